# Stand-ins for the Vivado block-design commands: each call is printed as one line ("CMD arg ...")
# and returns the object it names, so that tclsh can run hw/vivado/e2train_bd.tcl and the test can
# check what it would build. Each kernel cell gets two m_axi masters, like the HLS tops.
proc e2_log {cmd args} { puts "$cmd [join $args { }]" }
foreach cmd {create_bd_design apply_bd_automation set_property connect_bd_net connect_bd_intf_net
             assign_bd_address validate_bd_design save_bd_design} {
    proc $cmd {args} "e2_log $cmd {*}\$args; return {}"
}
proc create_bd_cell {args} { e2_log create_bd_cell {*}$args; return [lindex $args end] }
proc get_bd_pins {args} { return [lindex $args end] }
proc get_bd_addr_spaces {args} { return [lindex $args end] }
proc get_bd_addr_segs {args} { return [lindex $args end] }
proc get_bd_intf_pins {args} {
    if {[lindex $args 0] eq "-of_objects"} {
        set cell [lindex $args 1]
        return [list $cell/m_axi_gmem1 $cell/m_axi_gmem0]
    }
    return [lindex $args end]
}

# Project-level commands of hw/vivado/build.tcl. A "run" leaves the files Vivado would write where it
# writes them (a bitstream and a handoff with the stub's content), so the script's copies can be checked.
foreach cmd {create_project update_ip_catalog add_files launch_runs wait_on_run open_run
             report_utilization report_timing_summary} {
    proc $cmd {args} "e2_log $cmd {*}\$args; return {}"
}
proc current_project {args} { return e2train }
proc current_fileset {args} { return sources_1 }
proc get_files {args} { return [lindex $args end] }
proc get_runs {args} { return [lindex $args end] }
proc get_board_parts {args} {
    e2_log get_board_parts {*}$args
    if {[info exists ::env(E2_STUB_NO_BOARD)]} { return {} }
    return {em.avnet.com:zed:part0:1.3 avnet.com:zedboard:part0:1.4}
}
proc make_wrapper {args} { e2_log make_wrapper {*}$args; return /stub/e2train_wrapper.v }
proc get_property {name obj} {
    if {$name eq "PROGRESS"} {
        global proj_dir
        foreach {dir file} {e2train.runs/impl_1 e2train_wrapper.bit e2train.gen/sources_1/bd/e2train/hw_handoff e2train.hwh} {
            file mkdir [file join $proj_dir $dir]
            set f [open [file join $proj_dir $dir $file] w]; puts -nonewline $f "stub $file"; close $f
        }
        return 100%
    }
    return {}
}
