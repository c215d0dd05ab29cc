# Build the e2train overlay: project, block design (e2train_bd.tcl), constraints, synthesis,
# implementation, bitstream; copies e2train.bit and e2train.hwh into OUT_DIR.
#
#   vivado -mode batch -source hw/vivado/build.tcl -tclargs OUT_DIR JOBS CONTRACT_VERSION IP_REPO [IP_REPO ...]
#
# CONTRACT_VERSION: the contract the design is built for (e2train.fixed.CONTRACT_VERSION), stored in
# the overlay's contract version register. IP_REPO: folders holding the HLS tops exported with
# `export_design -format ip_catalog`. Use hw/vivado/build.sh, which reads the version, finds the IP
# and records the result (sha256, contract version) in bitstreams/manifest.json.

set here [file dirname [file normalize [info script]]]
if {[llength $argv] < 4} {
    error "usage: vivado -mode batch -source build.tcl -tclargs OUT_DIR JOBS CONTRACT_VERSION IP_REPO \[IP_REPO ...\]"
}
set out_dir [file normalize [lindex $argv 0]]
set jobs [lindex $argv 1]
set contract_version [lindex $argv 2]
set ip_repos [lrange $argv 3 end]
set part xc7z020clg484-1
set proj_dir [file join $out_dir vivado_project]

create_project e2train $proj_dir -part $part -force
# The ZedBoard's board files: their vendor prefix changed across Vivado releases, so take the
# installed one with the highest version.
set board ""
foreach b [get_board_parts -quiet -latest_file_version {*:zed*:part0:*}] {
    set v [lindex [split $b :] end]
    if {$board eq "" || [package vcompare $v [lindex [split $board :] end]] > 0} {
        set board $b
    }
}
if {$board eq ""} {
    error "e2train: no ZedBoard board files in this Vivado (get_board_parts *zed*); install them from the Xilinx board store"
}
set_property board_part $board [current_project]
set_property ip_repo_paths $ip_repos [current_project]
update_ip_catalog

source [file join $here e2train_bd.tcl]
e2_create_bd $contract_version
add_files -norecurse [make_wrapper -files [get_files e2train.bd] -top]
set_property top e2train_wrapper [current_fileset]
add_files -fileset constrs_1 -norecurse [file join $here e2train.xdc]

launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "e2train: implementation failed; see $proj_dir/e2train.runs/impl_1/runme.log"
}
file mkdir $out_dir
file copy -force [file join $proj_dir e2train.runs impl_1 e2train_wrapper.bit] [file join $out_dir e2train.bit]
# the handoff is under e2train.gen (Vivado 2020.2 and later) or e2train.srcs (earlier)
set hwh [lindex [glob -nocomplain [file join $proj_dir e2train.{gen,srcs} sources_1 bd e2train hw_handoff e2train.hwh]] 0]
if {$hwh eq ""} {
    error "e2train: no hw_handoff/e2train.hwh under $proj_dir"
}
file copy -force $hwh [file join $out_dir e2train.hwh]
open_run impl_1
report_utilization -file [file join $out_dir e2train_utilization.rpt]
report_timing_summary -file [file join $out_dir e2train_timing.rpt]
puts "e2train: wrote $out_dir/e2train.bit and e2train.hwh (contract v$contract_version)"
