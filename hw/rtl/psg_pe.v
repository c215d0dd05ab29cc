// One processing element of the PSG weight-gradient engine.
//
// The PE owns lane p (lane_id) of every row of the weight tile: the weights (o, kb*P + p) for
// o < O and kb < KB. Their 48-bit accumulators live in a small simple-dual-port memory
// addressed by {o, kb}. Each issued operation multiplies this lane's x byte of the current
// reduction step by g[o] and adds the product into the accumulator, through a three-stage
// pipeline: issue (operand select) -> product + accumulator read -> add + write back.
//
// kinds: KIND_MSB adds x_msb*g_msb << 10 (phase 1), KIND_CORR adds the three correction
// partial products (phase 2), KIND_FULL adds both (mode "full", one pass). Because phase 1 adds
// multiples of 1024, the accumulator holds G_msb << 10 after it, and G_full after phase 2: the
// sign of the accumulator is the output in both cases.
//
// Scans read the accumulators without writing: SCAN_MAX keeps max |G_msb| of the lane,
// SCAN_DECIDE applies the PSG choice against the threshold beta_q * max|G_msb| and appends the
// address of every not-confident weight to the lane's list, which phase 2 walks.
`default_nettype none
module psg_pe #(
    parameter integer PB    = 2,     // log2 of the number of PEs
    parameter integer OB    = 3,     // address bits for o
    parameter integer KBB   = 2,     // address bits for kb
    parameter integer KBMAX = 4,     // blocks of P x values per step
    parameter integer OMAX  = 8
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     clear,        // job start: forget counts and maxima
    input  wire [PB-1:0]            lane_id,      // which lane p of each block this PE owns
    input  wire [15:0]              k_len,        // K, the x values per step (lane mask)
    // issue
    input  wire                     op_v,
    input  wire [1:0]               op_kind,
    input  wire                     op_first,     // first step of phase 1: start from 0
    input  wire                     op_list,      // phase 2: take the address from the list
    input  wire [OB-1:0]            op_o,
    input  wire [KBB-1:0]           op_kb,
    input  wire [15:0]              op_idx,       // phase 2: list index
    input  wire [8*KBMAX-1:0]       x_lane,       // this lane's x byte of each block
    input  wire [16*OMAX-1:0]       g_all,        // g[o] for every o of the step
    // scans
    input  wire                     scan_v,
    input  wire                     rd_v,         // read only (output stage)
    input  wire                     scan_decide,  // 0: max scan, 1: decide scan
    input  wire [OB-1:0]            scan_o,
    input  wire [KBB-1:0]           scan_kb,
    input  wire [48:0]              thr,          // beta_q * max|G_msb|
    // results
    output wire [47:0]              rd_acc,       // accumulator read by a scan (second cycle after)
    output reg  [31:0]              lane_max,     // max |G_msb| of this lane
    output reg  [15:0]              n_list,       // not-confident weights of this lane
    output reg  [15:0]              n_conf,       // confident weights of this lane
    output wire                     wr_msb,       // a write-back with an MSB product this cycle
    output wire                     wr_corr       // a write-back with correction products this cycle
);
    localparam integer AW = OB + KBB;
    localparam integer D  = 1 << AW;
    localparam [1:0] KIND_MSB = 2'd0, KIND_CORR = 2'd1, KIND_FULL = 2'd2;

    reg [47:0]   acc_mem  [0:D-1];
    reg [AW-1:0] list_mem [0:D-1];

    // ---- stage 0: issue, operand select ------------------------------------------------------
    wire [AW-1:0] list_addr = list_mem[op_idx[AW-1:0]];
    wire [OB-1:0] iss_o  = op_list ? list_addr[AW-1:KBB] : op_o;
    wire [KBB-1:0] iss_kb = op_list ? list_addr[KBB-1:0] : op_kb;
    wire [31:0]   lane_index = {{(32-KBB-PB){1'b0}}, op_kb, lane_id};
    wire          lane_ok = lane_index < {16'd0, k_len};
    wire          iss_v = op_v && (op_list ? ({16'd0, op_idx} < {16'd0, n_list}) : lane_ok);
    // operand selects written as compare-and-pick, which maps to LUT mux trees (a variable
    // part-select becomes a barrel shifter in some synthesis flows)
    reg  [7:0]    x_sel;
    reg  [15:0]   g_sel;
    integer xi, gi;
    always @(*) begin
        x_sel = 8'd0;
        for (xi = 0; xi < KBMAX; xi = xi + 1)
            if ({{(32-KBB){1'b0}}, iss_kb} == xi) x_sel = x_lane[8*xi +: 8];
        g_sel = 16'd0;
        for (gi = 0; gi < OMAX; gi = gi + 1)
            if ({{(32-OB){1'b0}}, iss_o} == gi) g_sel = g_all[16*gi +: 16];
    end

    reg           s1_v, s1_first;
    reg  [1:0]    s1_kind;
    reg  [AW-1:0] s1_addr;
    reg  [7:0]    s1_x;
    reg  [15:0]   s1_g;
    // scans share the read port
    reg           s1_scan, s1_dec;

    always @(posedge clk) begin
        if (rst) begin
            s1_v <= 1'b0;
            s1_scan <= 1'b0;
        end else begin
            s1_v <= iss_v;
            s1_scan <= scan_v && ({{(32-KBB-PB){1'b0}}, scan_kb, lane_id} < {16'd0, k_len});
        end
        s1_first <= op_first;
        s1_kind  <= op_kind;
        s1_addr  <= (scan_v || rd_v) ? {scan_o, scan_kb} : {iss_o, iss_kb};
        s1_x     <= x_sel;
        s1_g     <= g_sel;
        s1_dec   <= scan_decide;
    end

    // ---- stage 1: products, accumulator read -------------------------------------------------
    wire signed [13:0] p_msb;
    wire signed [23:0] p_corr;
    psg_mul_split mul (.x(s1_x), .g(s1_g), .p_msb(p_msb), .p_corr(p_corr));

    wire signed [47:0] msb_term  = {{24{p_msb[13]}}, p_msb, 10'd0};
    wire signed [47:0] corr_term = {{24{p_corr[23]}}, p_corr};
    wire signed [47:0] prod = (s1_kind == KIND_FULL) ? msb_term + corr_term :
                              (s1_kind == KIND_CORR) ? corr_term : msb_term;

    reg           s2_v, s2_first, s2_scan, s2_dec;
    reg  [1:0]    s2_kind;
    reg  [AW-1:0] s2_addr;
    reg  [47:0]   s2_prod;
    reg  [47:0]   rd_data;

    always @(posedge clk) begin
        if (rst) begin
            s2_v <= 1'b0;
            s2_scan <= 1'b0;
        end else begin
            s2_v <= s1_v;
            s2_scan <= s1_scan;
        end
        s2_first <= s1_first;
        s2_dec   <= s1_dec;
        s2_kind  <= s1_kind;
        s2_addr  <= s1_addr;
        s2_prod  <= prod;
        rd_data  <= acc_mem[s1_addr];
    end

    // ---- stage 2: add and write back ---------------------------------------------------------
    // The write of the previous cycle is not yet visible to a read issued in the same cycle
    // (read-first memory), so a read of the address written just before takes the written value.
    reg           last_we;
    reg  [AW-1:0] last_addr;
    reg  [47:0]   last_data;
    wire [47:0]   base = s2_first ? 48'd0 : ((last_we && last_addr == s2_addr) ? last_data : rd_data);
    wire [47:0]   acc_new = base + s2_prod;

    always @(posedge clk) begin
        if (s2_v) acc_mem[s2_addr] <= acc_new;
        if (rst) last_we <= 1'b0;
        else last_we <= s2_v;
        last_addr <= s2_addr;
        last_data <= acc_new;
    end
    assign wr_msb  = s2_v && (s2_kind != KIND_CORR);
    assign wr_corr = s2_v && (s2_kind != KIND_MSB);
    assign rd_acc  = rd_data;

    // ---- scans ------------------------------------------------------------------------------
    wire [47:0] acc_abs = rd_data[47] ? (~rd_data + 48'd1) : rd_data;
    wire [37:0] msb_abs = acc_abs[47:10];          // |G_msb|; phase 1 left the low 10 bits zero
    wire        conf = (msb_abs != 38'd0) && ({1'b0, acc_abs, 6'd0} >= {6'd0, thr});

    always @(posedge clk) begin
        if (rst || clear) begin
            lane_max <= 32'd0;
            n_list <= 16'd0;
            n_conf <= 16'd0;
        end else if (s2_scan) begin
            if (!s2_dec) begin
                if ({6'd0, lane_max} < msb_abs) lane_max <= msb_abs[31:0];
            end else if (conf) begin
                n_conf <= n_conf + 16'd1;
            end else begin
                n_list <= n_list + 16'd1;
            end
        end
    end
    always @(posedge clk) begin
        if (s2_scan && s2_dec && !conf) list_mem[n_list[AW-1:0]] <= s2_addr;
    end
endmodule
`default_nettype wire
