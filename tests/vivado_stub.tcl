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
