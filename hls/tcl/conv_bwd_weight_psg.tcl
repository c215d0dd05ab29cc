# Vitis HLS: csim, csynth, cosim and export_design of conv_bwd_weight_psg_top for the xc7z020clg484-1 at 100 MHz.
#   vitis_hls -f hls/tcl/conv_bwd_weight_psg.tcl          (E2_HLS_STEPS="csim csynth" to run fewer steps)
source [file join [file dirname [info script]] common.tcl]
e2_run conv_bwd_weight_psg
