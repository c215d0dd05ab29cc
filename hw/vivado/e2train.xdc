# Constraints of the e2train overlay. The design uses no PL pins: the kernels talk to the PS over
# AXI only, the PS7 IP constrains its own clock (FCLK_CLK0, 100 MHz) and pins (DDR, MIO) from the
# ZedBoard preset. What remains is how the bitstream is written.
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
