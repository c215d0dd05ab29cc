# Shared Vitis HLS flow of the three kernels: C simulation against the golden vectors, synthesis for
# the ZedBoard (xc7z020clg484-1, 100 MHz), C/RTL co-simulation and IP export. Sourced by
# tcl/<kernel>.tcl; run from anywhere:
#
#   python tools/gen_golden.py                       # hls/build/golden/<kernel>.txt
#   vitis_hls -f hls/tcl/conv_fwd.tcl                # all steps
#   E2_HLS_STEPS="csim csynth" vitis_hls -f hls/tcl/conv_fwd.tcl
#
# The project goes to hls/build/vitis/<kernel>/ (ignored by git). Vitis HLS brings its own ap_int.h
# and hls_stream.h, so neither hls/vendor nor hls/include/sim is on its include path.

set e2_hls [file normalize [file join [file dirname [info script]] ..]]

proc e2_run {kernel} {
    global e2_hls
    set steps {csim csynth cosim export}
    if {[info exists ::env(E2_HLS_STEPS)]} {
        set steps $::env(E2_HLS_STEPS)
    }
    set golden [file join $e2_hls build golden ${kernel}.txt]
    if {![file exists $golden]} {
        error "golden vectors $golden missing: run python tools/gen_golden.py first"
    }
    set cflags "-std=c++14 -I$e2_hls/include -I$e2_hls/src"

    open_project -reset [file join $e2_hls build vitis $kernel]
    set_top ${kernel}_top
    add_files [file join $e2_hls src ${kernel}.cpp] -cflags $cflags
    add_files -tb [file join $e2_hls tb tb_${kernel}.cpp] -cflags "$cflags -I$e2_hls/tb"
    open_solution -reset zedboard -flow_target vivado
    set_part xc7z020clg484-1
    create_clock -period 10 -name default
    # 64-bit m_axi offsets: the register map of docs/register-map.md assumes them
    config_interface -m_axi_addr64=true

    if {[lsearch $steps csim] >= 0} {
        csim_design -argv $golden
    }
    if {[lsearch $steps csynth] >= 0} {
        csynth_design
    }
    if {[lsearch $steps cosim] >= 0} {
        cosim_design -argv $golden -trace_level none
    }
    if {[lsearch $steps export] >= 0} {
        export_design -format ip_catalog -rtl verilog -vendor e2train.org -library hls -version 1.0 \
            -display_name "e2train $kernel"
    }
    close_project
}
