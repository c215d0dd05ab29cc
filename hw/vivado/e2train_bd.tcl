# Block design of the e2train overlay for the ZedBoard (xc7z020clg484-1), sourced by build.tcl.
#
#   PS7 (board preset: DDR, MIO, clocks of the ZedBoard) -- M_AXI_GP0 -- AXI interconnect -- the
#   s_axi_control port of each HLS kernel top (registers of docs/register-map.md);
#   each kernel's m_axi bundles -- its own SmartConnect -- its own 64-bit HP port into DDR;
#   FCLK_CLK0 at 100 MHz clocks everything; one proc_sys_reset gives the resets;
#   the contract version register: an AXI GPIO (all inputs) on the same interconnect, its inputs tied
#   by an xlconstant to the contract version the design is built for (docs/register-map.md).
#
# The kernel table below must agree with bitstreams/manifest.json, the version register with
# CONTRACT_REGISTER in host/e2train/board/regmap.py (tests/test_board_vivado.py checks both): instance
# names are the keys of pynq's Overlay.ip_dict, addresses are what the driver expects.
#
# Expects: a project for the xc7z020clg484-1 with the exported HLS IPs on its ip_repo_paths.
# e2_create_bd takes the contract version (build.sh reads it from e2train.fixed.CONTRACT_VERSION).

set e2_bd_name e2train
set e2_clock_mhz 100
# vendor:library and version the HLS tops are exported under (export_design in hls/tcl/common.tcl)
set e2_ip_prefix e2train.org:hls
set e2_ip_version 1.0
# instance               HLS top                    control base   HP port
set e2_kernels {
    conv_fwd             conv_fwd_top               0x40000000     0
    conv_bwd_data        conv_bwd_data_top          0x40010000     1
    conv_bwd_weight_psg  conv_bwd_weight_psg_top    0x40020000     2
}
# the contract version register: AXI GPIO instance, the xlconstant feeding it, base address (64 KiB)
set e2_version_gpio contract_version
set e2_version_const contract_version_value
set e2_version_base 0x40030000

proc e2_create_bd {contract_version} {
    global e2_bd_name e2_clock_mhz e2_kernels e2_ip_prefix e2_ip_version
    global e2_version_gpio e2_version_const e2_version_base
    if {![string is digit -strict $contract_version] || $contract_version < 1} {
        error "e2train: contract version must be a positive integer (e2train.fixed.CONTRACT_VERSION), got '$contract_version'"
    }
    create_bd_design $e2_bd_name

    # Processing system with the ZedBoard preset, a 100 MHz fabric clock, GP0 master, HP0-2 slaves.
    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7 processing_system7_0]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set ps_cfg [list CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $e2_clock_mhz CONFIG.PCW_USE_M_AXI_GP0 1]
    foreach {inst top base hp} $e2_kernels {
        lappend ps_cfg CONFIG.PCW_USE_S_AXI_HP$hp 1 CONFIG.PCW_S_AXI_HP${hp}_DATA_WIDTH 64
    }
    set_property -dict $ps_cfg $ps

    set clk [get_bd_pins processing_system7_0/FCLK_CLK0]
    set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_fclk0]
    connect_bd_net $clk [get_bd_pins rst_fclk0/slowest_sync_clk]
    connect_bd_net [get_bd_pins processing_system7_0/FCLK_RESET0_N] [get_bd_pins rst_fclk0/ext_reset_in]
    set aresetn [get_bd_pins rst_fclk0/peripheral_aresetn]
    connect_bd_net $clk [get_bd_pins processing_system7_0/M_AXI_GP0_ACLK]

    # Control path: one AXI-Lite master port per kernel, and one for the contract version register.
    set nk [expr {[llength $e2_kernels] / 4}]
    set ctrl [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_interconnect ctrl_interconnect]
    set_property CONFIG.NUM_MI [expr {$nk + 1}] $ctrl
    connect_bd_intf_net [get_bd_intf_pins processing_system7_0/M_AXI_GP0] [get_bd_intf_pins ctrl_interconnect/S00_AXI]
    connect_bd_net $clk [get_bd_pins ctrl_interconnect/ACLK] [get_bd_pins ctrl_interconnect/S00_ACLK]
    connect_bd_net [get_bd_pins rst_fclk0/interconnect_aresetn] [get_bd_pins ctrl_interconnect/ARESETN]
    connect_bd_net $aresetn [get_bd_pins ctrl_interconnect/S00_ARESETN]

    set i 0
    foreach {inst top base hp} $e2_kernels {
        set cell [create_bd_cell -type ip -vlnv $e2_ip_prefix:$top:$e2_ip_version $inst]
        set mi [format M%02d $i]
        connect_bd_intf_net [get_bd_intf_pins ctrl_interconnect/${mi}_AXI] [get_bd_intf_pins $inst/s_axi_control]
        connect_bd_net $clk [get_bd_pins ctrl_interconnect/${mi}_ACLK] [get_bd_pins $inst/ap_clk]
        connect_bd_net $aresetn [get_bd_pins ctrl_interconnect/${mi}_ARESETN] [get_bd_pins $inst/ap_rst_n]

        # Data path: every m_axi bundle of the kernel (HLS names them m_axi_<bundle>) into one HP port.
        set masters [lsort [get_bd_intf_pins -of_objects $cell -filter {MODE == Master}]]
        if {[llength $masters] == 0} {
            error "e2train: $top has no m_axi master port; was it exported from hls/ with its INTERFACE pragmas?"
        }
        set sc [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect ${inst}_mem]
        set_property -dict [list CONFIG.NUM_SI [llength $masters] CONFIG.NUM_MI 1] $sc
        set j 0
        foreach m $masters {
            connect_bd_intf_net $m [get_bd_intf_pins ${inst}_mem/[format S%02d $j]_AXI]
            incr j
        }
        connect_bd_intf_net [get_bd_intf_pins ${inst}_mem/M00_AXI] [get_bd_intf_pins processing_system7_0/S_AXI_HP$hp]
        connect_bd_net $clk [get_bd_pins ${inst}_mem/aclk] [get_bd_pins processing_system7_0/S_AXI_HP${hp}_ACLK]
        connect_bd_net $aresetn [get_bd_pins ${inst}_mem/aresetn]

        # The control registers where the driver (and the manifest) expect them; 64 KiB each.
        assign_bd_address -target_address_space [get_bd_addr_spaces processing_system7_0/Data] \
            -offset $base -range 64K [get_bd_addr_segs $inst/s_axi_control/Reg]
        incr i
    }

    # The contract version register: GPIO_DATA (offset 0) reads the constant; the driver refuses an
    # overlay whose version is not its own, so a .bit swapped under a matching manifest is caught.
    set gpio [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_gpio $e2_version_gpio]
    set_property -dict [list CONFIG.C_ALL_INPUTS 1 CONFIG.C_GPIO_WIDTH 32 CONFIG.C_IS_DUAL 0] $gpio
    set const [create_bd_cell -type ip -vlnv xilinx.com:ip:xlconstant $e2_version_const]
    set_property -dict [list CONFIG.CONST_WIDTH 32 CONFIG.CONST_VAL $contract_version] $const
    connect_bd_net [get_bd_pins $e2_version_const/dout] [get_bd_pins $e2_version_gpio/gpio_io_i]
    set mi [format M%02d $nk]
    connect_bd_intf_net [get_bd_intf_pins ctrl_interconnect/${mi}_AXI] [get_bd_intf_pins $e2_version_gpio/S_AXI]
    connect_bd_net $clk [get_bd_pins ctrl_interconnect/${mi}_ACLK] [get_bd_pins $e2_version_gpio/s_axi_aclk]
    connect_bd_net $aresetn [get_bd_pins ctrl_interconnect/${mi}_ARESETN] [get_bd_pins $e2_version_gpio/s_axi_aresetn]
    assign_bd_address -target_address_space [get_bd_addr_spaces processing_system7_0/Data] \
        -offset $e2_version_base -range 64K [get_bd_addr_segs $e2_version_gpio/S_AXI/Reg]

    # The kernels' m_axi address spaces see the DDR through their HP port.
    assign_bd_address
    validate_bd_design
    save_bd_design
}
