"""The integer CPU engine: the contract's kernels as AVX2 (or portable C++) integer code for training on
a CPU (``model.conv_options.backend = "cpu"``). ``engine.CpuEngine`` is what the PSG convolution calls;
``fabric.CpuFabric`` puts the same library behind the numpy ``Fabric`` interface (``get_fabric("cpu")``)."""
