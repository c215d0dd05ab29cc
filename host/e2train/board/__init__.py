"""The PYNQ host side of the ZedBoard: register maps of the fabric's IP cores (``regmap``)."""
