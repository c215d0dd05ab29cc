// One processing element of the PSG weight-gradient engine.
//
// The weights of the tile are spread over the P PEs by one of two mappings, chosen per job:
//
// * row mapping: the PE owns lane p (lane_id) of every block of P inputs of every row: the
//   weights (o, kb*P + p) for o < O and kb < KB, at address {o, kb}. A walk position (a, b) is
//   row a, block b: the P PEs work on P neighbouring inputs of one output channel.
// * diagonal mapping (jobs with K <= KD, when it takes fewer cycles): the PE owns the weights
//   (o, k) with (o + k) mod P == p, at address {ob, k} where ob = o / P. A walk position (a, b)
//   is output-channel block a, input b: the P PEs work on P output channels of one input, so a
//   K that is not a multiple of P wastes no lane. The skew (rather than o mod P == p) spreads
//   every output channel and every input over all PEs, which keeps the pass-2 lists even and
//   lets the output stage read a row (o, P neighbouring inputs) from P PEs at once.
//
// The 48-bit accumulators live in a small simple-dual-port memory. Each issued operation
// multiplies the x byte of its input by g[o] and adds the product into the accumulator, through
// a three-stage pipeline: issue (operand select) -> product + accumulator read -> add + write back.
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
    parameter integer OMAX  = 8,
    parameter integer KD    = 4,     // largest K of the diagonal mapping (x values it selects from)
    parameter integer KDB   = 2,     // address bits for k in the diagonal mapping
    parameter integer CB    = 2      // width of the walk's inner position b (max of KBB, KDB)
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     clear,        // job start: forget counts and maxima
    input  wire [PB-1:0]            lane_id,      // which lane p of each block this PE owns
    input  wire [15:0]              k_len,        // K, the x values per step (lane mask)
    input  wire [15:0]              o_len,        // O, output channels (lane mask, diagonal mapping)
    input  wire                     diag,         // this job uses the diagonal mapping
    // issue
    input  wire                     op_v,
    input  wire [1:0]               op_kind,
    input  wire                     op_first,     // first step of phase 1: start from 0
    input  wire                     op_list,      // phase 2: take the address from the list
    input  wire [OB-1:0]            op_o,
    input  wire [CB-1:0]            op_kb,
    input  wire [15:0]              op_idx,       // phase 2: list index
    input  wire [8*KBMAX-1:0]       x_lane,       // this lane's x byte of each block (row mapping)
    input  wire [8*KD-1:0]          x_diag,       // x[0 .. KD-1] of the step (diagonal mapping)
    input  wire [16*OMAX-1:0]       g_all,        // g[o] for every o of the step
    // scans
    input  wire                     scan_v,
    input  wire                     rd_v,         // read only (output stage): row scan_o, block scan_kb
    input  wire                     scan_decide,  // 0: max scan, 1: decide scan
    input  wire [OB-1:0]            scan_o,       // scans: walk position (a, b); rd_v: output row
    input  wire [CB-1:0]            scan_kb,
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
    // address of the weight this PE holds at walk position (a, b)
    /* verilator lint_off UNUSEDSIGNAL */   // w is wider than any address
    function [AW-1:0] walk_addr;
        input          d;
        input [OB-1:0] a;
        input [CB-1:0] b;
        reg   [31:0]   w;
        begin
            if (d) w = ({{(32-OB){1'b0}}, a} << KDB) | {{(32-CB){1'b0}}, b};
            else   w = ({{(32-OB){1'b0}}, a} << KBB) | {{(32-KBB){1'b0}}, b[KBB-1:0]};
            walk_addr = w[AW-1:0];
        end
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */
    // output channel of the diagonal-mapping weight at walk position (ob, k) of this PE
    function [31:0] diag_o;
        input [31:0] ob;
        input [PB-1:0] k;
        reg   [PB-1:0] r;
        begin
            r = lane_id - k;
            diag_o = (ob << PB) | {{(32-PB){1'b0}}, r};
        end
    endfunction

    wire [AW-1:0] list_addr = list_mem[op_idx[AW-1:0]];
    wire [AW-1:0] iss_addr = op_list ? list_addr : walk_addr(diag, op_o, op_kb);
    // the address back to (row or o-block, block or input)
    wire [31:0]   ia32  = {{(32-AW){1'b0}}, iss_addr};
    wire [31:0]   iss_a = diag ? (ia32 >> KDB) : (ia32 >> KBB);
    wire [31:0]   iss_b = ia32 & (diag ? ((32'd1 << KDB) - 32'd1) : ((32'd1 << KBB) - 32'd1));
    wire [31:0]   iss_o = diag ? diag_o(iss_a, iss_b[PB-1:0]) : iss_a;
    wire [31:0]   lane_index = (iss_b << PB) | {{(32-PB){1'b0}}, lane_id};
    wire          lane_ok = diag ? (iss_o < {16'd0, o_len}) : (lane_index < {16'd0, k_len});
    wire          iss_v = op_v && (op_list ? ({16'd0, op_idx} < {16'd0, n_list}) : lane_ok);
    // operand selects written as compare-and-pick, which maps to LUT mux trees (a variable
    // part-select becomes a barrel shifter in some synthesis flows)
    reg  [7:0]    x_sel;
    reg  [15:0]   g_sel;
    integer xi, gi;
    always @(*) begin
        x_sel = 8'd0;
        if (diag) begin
            for (xi = 0; xi < KD; xi = xi + 1)
                if (iss_b == xi) x_sel = x_diag[8*xi +: 8];
        end else begin
            for (xi = 0; xi < KBMAX; xi = xi + 1)
                if (iss_b == xi) x_sel = x_lane[8*xi +: 8];
        end
        g_sel = 16'd0;
        for (gi = 0; gi < OMAX; gi = gi + 1)
            if (iss_o == gi) g_sel = g_all[16*gi +: 16];
    end

    // scans walk the tile as pass 1 does; the output stage reads row scan_o (an output channel),
    // block scan_kb (P neighbouring inputs): in the diagonal mapping input kb*P + i of that row
    // sits in PE (o + i) mod P, so PE p reads input kb*P + ((p - o) mod P)
    wire [31:0]   so32 = {{(32-OB){1'b0}}, scan_o};
    wire [31:0]   sk32 = {{(32-CB){1'b0}}, scan_kb};
    wire [PB-1:0] rd_i = lane_id - so32[PB-1:0];
    wire [31:0]   rd_k = ((sk32 << PB) | {{(32-PB){1'b0}}, rd_i}) & ((32'd1 << KDB) - 32'd1);
    wire [31:0]   rd_diag = ((so32 >> PB) << KDB) | rd_k;
    wire [AW-1:0] rd_addr = diag ? rd_diag[AW-1:0] : walk_addr(1'b0, scan_o, scan_kb);
    wire [AW-1:0] scan_addr = walk_addr(diag, scan_o, scan_kb);
    wire          scan_ok = diag ? (diag_o(so32, sk32[PB-1:0]) < {16'd0, o_len})
                                 : (((sk32 << PB) | {{(32-PB){1'b0}}, lane_id}) < {16'd0, k_len});

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
            s1_scan <= scan_v && scan_ok;
        end
        s1_first <= op_first;
        s1_kind  <= op_kind;
        s1_addr  <= scan_v ? scan_addr : (rd_v ? rd_addr : iss_addr);
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
    wire _unused_ok = &{1'b0, rd_diag, 1'b0};
endmodule
`default_nettype wire
