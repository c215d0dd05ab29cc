// PSG weight-gradient engine: conv_bwd_weight_psg of docs/contracts.md for one weight tile.
//
// A job computes, for a tile of O output channels x K = C_t*k*k inputs, the signs of
//   G[o][kk] = sum over T reduction steps of g[t][o] * x[t][kk]
// (the host im2cols x: step t is one output pixel (n, h', w'), x[t] its K patch values, g[t] its
// O gradients). Two AXI4-Stream inputs carry x (int8) and g (int16) step by step; one output
// stream carries the result. The weights are spread over the P PEs by the row mapping (O rows of
// KB = ceil(K/P) blocks of P weights; PE p owns lane p of every block: O*KB cycles per step) or,
// for K <= KD when it takes fewer cycles, by the diagonal mapping (PE p owns the weights with
// (o + k) mod P == p: ceil(O/P)*K cycles per step, no lane lost when K is not a multiple of P);
// see psg_pe.v. The engine picks the mapping at ap_start; STATUS shows it.
//
// mode 0 (psg):   pass 1 accumulates G_msb for every weight (MSB partial product only); a scan
//                 finds max|G_msb| (or the host's MAX_IN if larger), a second scan applies the
//                 PSG choice and lists the not-confident weights per PE; pass 2 (the host sends
//                 the same streams again) adds the three correction partial products for listed
//                 weights only. Output: one int8 sign per weight, 8 per beat. Pass 2 is skipped
//                 when every weight is confident (STATUS tells the host).
// mode 1 (full):  one pass with the whole product; output: G_full as int64, one per beat.
// mode 2 (probe): pass 1 and the max scan only; MAX_ABS_MSB is the result, no output. A layer
//                 larger than a tile is probed tile by tile, then run in mode 0 with MAX_IN set to
//                 the layer's max, so that every tile applies the layer-wide threshold.
//
// Control: AXI4-Lite laid out as a Vitis HLS s_axilite/ap_ctrl_hs block (docs/register-map.md).
`default_nettype none
module psg_wgrad_engine #(
    parameter integer P    = 16,    // processing elements (a power of two, >= 2)
    parameter integer OMAX = 32,    // largest O of a tile
    parameter integer KMAX = 288,   // largest K = C_t*k*k of a tile
    parameter integer XPB  = 8,     // x elements (int8) per beat of s_axis_x
    parameter integer GPB  = 4,     // g elements (int16) per beat of s_axis_g
    parameter integer KDIAG = 32    // largest K of the diagonal mapping (1..255; clipped to KMAX)
) (
    input  wire                 ap_clk,
    input  wire                 ap_rst_n,
    /* verilator lint_off SYMRSVDWORD */   // the name Vivado's block design expects
    output wire                 interrupt,
    /* verilator lint_on SYMRSVDWORD */
    // AXI4-Lite control
    input  wire [6:0]           s_axi_control_awaddr,
    input  wire                 s_axi_control_awvalid,
    output wire                 s_axi_control_awready,
    input  wire [31:0]          s_axi_control_wdata,
    input  wire [3:0]           s_axi_control_wstrb,
    input  wire                 s_axi_control_wvalid,
    output wire                 s_axi_control_wready,
    output wire [1:0]           s_axi_control_bresp,
    output reg                  s_axi_control_bvalid,
    input  wire                 s_axi_control_bready,
    input  wire [6:0]           s_axi_control_araddr,
    input  wire                 s_axi_control_arvalid,
    output wire                 s_axi_control_arready,
    output reg  [31:0]          s_axi_control_rdata,
    output wire [1:0]           s_axi_control_rresp,
    output reg                  s_axi_control_rvalid,
    input  wire                 s_axi_control_rready,
    // x stream
    input  wire [8*XPB-1:0]     s_axis_x_tdata,
    input  wire                 s_axis_x_tvalid,
    output wire                 s_axis_x_tready,
    input  wire                 s_axis_x_tlast,
    // g stream
    input  wire [16*GPB-1:0]    s_axis_g_tdata,
    input  wire                 s_axis_g_tvalid,
    output wire                 s_axis_g_tready,
    input  wire                 s_axis_g_tlast,
    // result stream
    output reg  [63:0]          m_axis_out_tdata,
    output reg  [7:0]           m_axis_out_tkeep,
    output reg                  m_axis_out_tvalid,
    input  wire                 m_axis_out_tready,
    output reg                  m_axis_out_tlast
);
    function integer clog2;
        input integer v;
        integer r;
        begin
            r = 0;
            while ((1 << r) < v) r = r + 1;
            clog2 = r;
        end
    endfunction

    localparam integer PB     = clog2(P);
    localparam integer KBMAX  = (KMAX + P - 1) / P;
    localparam integer OB     = (clog2(OMAX) < 1) ? 1 : clog2(OMAX);
    localparam integer KBB    = (clog2(KBMAX) < 1) ? 1 : clog2(KBMAX);
    localparam integer XELEMS = ((KBMAX * P + XPB - 1) / XPB) * XPB;
    localparam integer GELEMS = ((OMAX + GPB - 1) / GPB) * GPB;
    localparam integer XPBB   = clog2(XPB);
    localparam integer GPBB   = clog2(GPB);
    localparam integer KD     = (KDIAG < KMAX) ? KDIAG : KMAX;
    localparam integer KDB    = (clog2(KD) < 1) ? 1 : clog2(KD);
    localparam integer CB     = (KDB > KBB) ? KDB : KBB;           // width of the walk's inner counter
    localparam integer OBLW   = clog2((OMAX + P - 1) / P + 1);      // bits of ceil(O/P)
    localparam integer KBDW   = clog2((KD + P - 1) / P + 1);        // bits of ceil(K/P) for K <= KD

    // The version of docs/contracts.md whose number formats the PEs compute (2: the MSB predictors
    // round to nearest and saturate, psg_mul_split.v), read back from CONTRACT_VERSION; and the
    // version of the register map below (3: CONTRACT_VERSION added), read back from CONFIG1.
    localparam [7:0] CONTRACT_VERSION = 8'd2;
    localparam [7:0] REGMAP_VERSION   = 8'd3;

    localparam [1:0] MODE_FULL = 2'd1, MODE_PROBE = 2'd2;   // 0 is psg
    localparam [1:0] KIND_MSB = 2'd0, KIND_CORR = 2'd1, KIND_FULL = 2'd2;

    localparam [3:0] S_IDLE = 4'd0, S_PASS = 4'd1, S_DRAIN = 4'd2, S_SCAN = 4'd3, S_SCAN_DRAIN = 4'd4,
                     S_RED = 4'd5, S_THR = 4'd6, S_OUT = 4'd7, S_OUT_FLUSH = 4'd8, S_DONE = 4'd9;

    wire rst = !ap_rst_n;

    // ------------------------------------------------------------------------------------------
    // AXI4-Lite register file
    // ------------------------------------------------------------------------------------------
    reg        ap_start, ap_done, ap_ready, gie;
    reg [1:0]  ier, isr;
    reg [1:0]  r_mode;
    reg [15:0] r_o, r_k;
    reg [31:0] r_t, r_maxin;
    reg [16:0] r_beta;

    // results and counters
    reg [31:0] gmax;
    reg [31:0] predicted;
    reg [15:0] unconf, list_len;
    reg [63:0] cnt_cycles, cnt_msb, cnt_corr;
    reg        st_arg_err, st_frame_err, st_skip2, st_diag;

    reg [3:0]  state;
    reg        phase2;
    wire       ap_idle = state == S_IDLE;
    wire       job_done;   // one-cycle pulse from the sequencer

    wire wr_go = s_axi_control_awvalid && s_axi_control_wvalid && !s_axi_control_bvalid;
    assign s_axi_control_awready = wr_go;
    assign s_axi_control_wready  = wr_go;
    assign s_axi_control_bresp   = 2'b00;
    assign s_axi_control_rresp   = 2'b00;
    wire wr_word = wr_go && s_axi_control_wstrb == 4'hF;   // partial-word writes are ignored
    wire [6:0] wa = s_axi_control_awaddr;
    wire [31:0] wd = s_axi_control_wdata;

    wire rd_go = s_axi_control_arvalid && !s_axi_control_rvalid;
    assign s_axi_control_arready = rd_go;
    wire rd_ctrl = rd_go && s_axi_control_araddr[6:2] == 5'h00;

    wire start_job = ap_start && ap_idle && !job_done;

    always @(posedge ap_clk) begin
        if (rst) begin
            ap_start <= 1'b0;
            ap_done <= 1'b0;
            ap_ready <= 1'b0;
            gie <= 1'b0;
            ier <= 2'b00;
            isr <= 2'b00;
            r_mode <= 2'd0;
            r_o <= 16'd0;
            r_k <= 16'd0;
            r_t <= 32'd0;
            r_beta <= 17'd0;
            r_maxin <= 32'd0;
            s_axi_control_bvalid <= 1'b0;
        end else begin
            if (s_axi_control_bvalid && s_axi_control_bready) s_axi_control_bvalid <= 1'b0;
            if (wr_go) s_axi_control_bvalid <= 1'b1;
            if (rd_ctrl) begin   // ap_done and ap_ready clear on read
                ap_done <= 1'b0;
                ap_ready <= 1'b0;
            end
            if (wr_word) begin
                case (wa[6:2])
                    5'h00: if (wd[0]) ap_start <= 1'b1;
                    5'h01: gie <= wd[0];
                    5'h02: ier <= wd[1:0];
                    5'h03: isr <= isr ^ wd[1:0];      // toggle on write
                    5'h04: r_mode <= wd[1:0];
                    5'h06: r_o <= wd[15:0];
                    5'h08: r_k <= wd[15:0];
                    5'h0A: r_t <= wd;
                    5'h0C: r_beta <= wd[16:0];
                    5'h0E: r_maxin <= wd;
                    default: ;
                endcase
            end
            if (job_done) begin
                ap_start <= 1'b0;
                ap_done <= 1'b1;
                ap_ready <= 1'b1;
                if (ier[0]) isr[0] <= 1'b1;
                if (ier[1]) isr[1] <= 1'b1;
            end
        end
    end
    assign interrupt = gie && (isr != 2'b00);

    wire [7:0] st_state = {4'd0, state};
    always @(posedge ap_clk) begin
        if (rst) begin
            s_axi_control_rvalid <= 1'b0;
            s_axi_control_rdata <= 32'd0;
        end else begin
            if (s_axi_control_rvalid && s_axi_control_rready) s_axi_control_rvalid <= 1'b0;
            if (rd_go) begin
                s_axi_control_rvalid <= 1'b1;
                case (s_axi_control_araddr[6:2])
                    5'h00: s_axi_control_rdata <= {28'd0, ap_ready, ap_idle, ap_done, ap_start};
                    5'h01: s_axi_control_rdata <= {31'd0, gie};
                    5'h02: s_axi_control_rdata <= {30'd0, ier};
                    5'h03: s_axi_control_rdata <= {30'd0, isr};
                    5'h04: s_axi_control_rdata <= {30'd0, r_mode};
                    5'h06: s_axi_control_rdata <= {16'd0, r_o};
                    5'h08: s_axi_control_rdata <= {16'd0, r_k};
                    5'h0A: s_axi_control_rdata <= r_t;
                    5'h0C: s_axi_control_rdata <= {15'd0, r_beta};
                    5'h0E: s_axi_control_rdata <= r_maxin;
                    5'h10: s_axi_control_rdata <= gmax;
                    5'h12: s_axi_control_rdata <= predicted;
                    5'h14: s_axi_control_rdata <= {st_state, 19'd0, st_diag, st_skip2, st_frame_err, st_arg_err,
                                                   (state == S_PASS) && phase2};
                    5'h15: s_axi_control_rdata <= {24'd0, CONTRACT_VERSION};
                    5'h16: s_axi_control_rdata <= cnt_cycles[31:0];
                    5'h17: s_axi_control_rdata <= cnt_cycles[63:32];
                    5'h18: s_axi_control_rdata <= cnt_msb[31:0];
                    5'h19: s_axi_control_rdata <= cnt_msb[63:32];
                    5'h1A: s_axi_control_rdata <= cnt_corr[31:0];
                    5'h1B: s_axi_control_rdata <= cnt_corr[63:32];
                    5'h1C: s_axi_control_rdata <= {16'd0, unconf};
                    5'h1D: s_axi_control_rdata <= {16'd0, list_len};
                    5'h1E: s_axi_control_rdata <= {KMAX[15:0], OMAX[7:0], P[7:0]};
                    5'h1F: s_axi_control_rdata <= {REGMAP_VERSION, KD[7:0], GPB[7:0], XPB[7:0]};
                    default: s_axi_control_rdata <= 32'd0;
                endcase
            end
        end
    end

    // ------------------------------------------------------------------------------------------
    // Job arguments, latched at start
    // ------------------------------------------------------------------------------------------
    reg [1:0]  j_mode;
    reg [15:0] j_o, j_k, j_kb, j_xbeats, j_gbeats;
    reg [15:0] j_rows, j_cols;      // the pass and scan walk: O x KB (row mapping), ceil(O/P) x K (diagonal)
    reg        j_diag;
    reg [31:0] j_t, j_maxin;
    reg [16:0] j_beta;
    wire args_ok = r_mode <= MODE_PROBE && r_o != 16'd0 && r_o <= OMAX[15:0] && r_k != 16'd0
                   && r_k <= KMAX[15:0] && r_t != 32'd0 && r_beta <= 17'h10000;

    // mapping choice: cycles per step ceil(O/P)*K (diagonal) against O*ceil(K/P) (row); the
    // products are shift-adds over the few bits the quotients can have when K <= KD
    wire [15:0] r_oblk = (r_o + P[15:0] - 16'd1) >> PB;
    wire [15:0] r_kb   = (r_k + P[15:0] - 16'd1) >> PB;
    reg  [15:0] cost_diag, cost_row;
    integer mi;
    always @(*) begin
        cost_diag = 16'd0;
        cost_row = 16'd0;
        for (mi = 0; mi < OBLW; mi = mi + 1)
            if (r_oblk[mi]) cost_diag = cost_diag + (r_k << mi);
        for (mi = 0; mi < KBDW; mi = mi + 1)
            if (r_kb[mi]) cost_row = cost_row + (r_o << mi);
    end
    wire use_diag = r_k <= KD[15:0] && cost_diag < cost_row;

    // ------------------------------------------------------------------------------------------
    // Input streams
    // ------------------------------------------------------------------------------------------
    reg  pass_start;
    wire x_full, g_full, x_ferr, g_ferr;
    wire advance;
    wire [8*XELEMS-1:0]  xcur;
    wire [16*GELEMS-1:0] gcur;
    wire loading = state == S_PASS;

    psg_stream_buf #(.EW(8), .PER_BEAT(XPB), .ELEMS(XELEMS)) xbuf (
        .clk(ap_clk), .rst(rst), .start(pass_start), .active(loading), .nbeats(j_xbeats), .steps(j_t),
        .s_tdata(s_axis_x_tdata), .s_tvalid(s_axis_x_tvalid), .s_tready(s_axis_x_tready),
        .s_tlast(s_axis_x_tlast), .full(x_full), .advance(advance), .cur(xcur), .frame_err(x_ferr));
    psg_stream_buf #(.EW(16), .PER_BEAT(GPB), .ELEMS(GELEMS)) gbuf (
        .clk(ap_clk), .rst(rst), .start(pass_start), .active(loading), .nbeats(j_gbeats), .steps(j_t),
        .s_tdata(s_axis_g_tdata), .s_tvalid(s_axis_g_tvalid), .s_tready(s_axis_g_tready),
        .s_tlast(s_axis_g_tlast), .full(g_full), .advance(advance), .cur(gcur), .frame_err(g_ferr));

    // ------------------------------------------------------------------------------------------
    // Sequencer
    // ------------------------------------------------------------------------------------------
    reg          cur_v;              // cur holds a step that is being issued
    reg [31:0]   steps_done;
    reg [OB-1:0] o_c;
    reg [CB-1:0] kb_c;
    reg [15:0]   idx_c;
    reg [2:0]    drain;
    reg          scan_dec;
    reg [PB:0]   red_p;
    reg [4:0]    thr_i;
    reg [48:0]   thr;

    wire both_full = x_full && g_full;
    // the output stage walks the rows of the result (O x KB); passes and scans walk the mapping
    wire [15:0] lim_a = (state == S_OUT) ? j_o : j_rows;
    wire [15:0] lim_b = (state == S_OUT) ? j_kb : j_cols;
    wire last_o  = {{(16-OB){1'b0}}, o_c} == lim_a - 16'd1;
    wire last_kb = {{(16-CB){1'b0}}, kb_c} == lim_b - 16'd1;
    wire step_end = phase2 ? (idx_c == list_len - 16'd1) : (last_o && last_kb);
    wire last_step = steps_done == j_t - 32'd1;
    wire in_pass = state == S_PASS;
    assign advance = in_pass && both_full && (cur_v ? (step_end && !last_step) : (steps_done != j_t));
    wire op_v = in_pass && cur_v;
    wire [1:0] op_kind = phase2 ? KIND_CORR : ((j_mode == MODE_FULL) ? KIND_FULL : KIND_MSB);
    wire op_first = !phase2 && steps_done == 32'd0;

    wire scan_v = state == S_SCAN;

    // per-PE results
    wire [48*P-1:0] pe_acc;
    wire [32*P-1:0] pe_max;
    wire [16*P-1:0] pe_list, pe_conf;
    wire [P-1:0]    pe_wr_msb, pe_wr_corr;

    // output stage: rows {o, kb} are read from every PE (prefetched one row ahead) and serialised
    // into the result stream: 8 signs per beat (psg) or one G_full per beat (full)
    reg            f_more;                 // rows left to fetch
    reg            rdv1, rdv2;             // a row read in flight
    reg [PB:0]     m1_n, m2_n;
    reg            m1_last, m2_last;
    reg [48*P-1:0] nx, row;
    reg            nx_v, row_v;
    reg [PB:0]     nx_n, row_n, lane;
    reg            nx_last, row_last;
    reg [63:0]     pk_data;
    reg [7:0]      pk_keep;
    reg [3:0]      pk_pos;
    wire [31:0] kb_first = {{(32-CB){1'b0}}, kb_c} << PB;
    wire [15:0] kb_lanes_left = j_k - kb_first[15:0];
    // diagonal mapping: input i of output row o is in PE (o + i) mod P
    wire [31:0] o_c32 = {{(32-OB){1'b0}}, o_c};
    wire [PB-1:0] fetch_rot = j_diag ? o_c32[PB-1:0] : {PB{1'b0}};
    reg  [PB-1:0] m1_rot, m2_rot, nx_rot, row_rot;
    wire [PB:0] fetch_n = (kb_lanes_left > P[15:0]) ? P[PB:0] : kb_lanes_left[PB:0];
    wire        rd_v = state == S_OUT && f_more && !nx_v && !rdv1 && !rdv2;
    wire        slot_free = !m_axis_out_tvalid || m_axis_out_tready;

    wire [8*P-1:0] row_sign;
    genvar sl;
    generate
        for (sl = 0; sl < P; sl = sl + 1) begin : sgn
            wire [47:0] v = row[48*sl +: 48];
            assign row_sign[8*sl +: 8] = (v == 48'd0) ? 8'h00 : (v[47] ? 8'hFF : 8'h01);
        end
    endgenerate
    wire [PB-1:0] lane_pe = lane[PB-1:0] + row_rot;
    wire [47:0] lane_val = row[48*lane_pe +: 48];
    wire [PB:0] lanes_left = row_n - lane;
    wire [3:0]  room = 4'd8 - pk_pos;
    wire [7:0]  left8 = {{(7-PB){1'b0}}, lanes_left};
    wire [3:0]  take_n = (j_mode == MODE_FULL) ? 4'd1 : ((left8 < {4'd0, room}) ? left8[3:0] : room);
    wire        row_end = left8 == {4'd0, take_n};
    wire [7:0]  lane_next = {{(7-PB){1'b0}}, lane} + {4'd0, take_n};
    wire [3:0]  pos_next = pk_pos + take_n;
    wire        beat_end = pos_next == 4'd8 || (row_last && row_end);
    reg  [63:0] nb_data;
    reg  [7:0]  nb_keep;
    integer ob;
    reg [7:0] src;
    reg [PB-1:0] src_pe;
    always @(*) begin   // bytes pk_pos .. pk_pos+take_n-1 of the beat take signs lane, lane+1, ...
        nb_data = 64'd0;
        nb_keep = 8'd0;
        src = 8'd0;
        src_pe = {PB{1'b0}};
        for (ob = 0; ob < 8; ob = ob + 1) begin
            src = {{(7-PB){1'b0}}, lane} + ob[7:0] - {4'd0, pk_pos};
            if (ob[3:0] >= pk_pos && ob[3:0] < pos_next) begin
                src_pe = src[PB-1:0] + row_rot;
                nb_data[8*ob +: 8] = row_sign[8*src_pe +: 8];
                nb_keep[ob] = 1'b1;
            end
        end
    end

    assign job_done = state == S_DONE;

    integer i;
    reg [31:0] red_max;
    reg [15:0] red_list, red_conf;
    always @(*) begin
        red_max = 32'd0;
        red_list = 16'd0;
        red_conf = 16'd0;
        for (i = 0; i < P; i = i + 1) begin
            if (red_p[PB-1:0] == i[PB-1:0]) begin
                red_max = pe_max[32*i +: 32];
                red_list = pe_list[16*i +: 16];
                red_conf = pe_conf[16*i +: 16];
            end
        end
    end

    function [PB:0] popcount;
        input [P-1:0] v;
        integer b;
        begin
            popcount = {(PB+1){1'b0}};
            for (b = 0; b < P; b = b + 1) popcount = popcount + {{PB{1'b0}}, v[b]};
        end
    endfunction

    always @(posedge ap_clk) begin
        pass_start <= 1'b0;
        if (rst) begin
            state <= S_IDLE;
            phase2 <= 1'b0;
            cur_v <= 1'b0;
            m_axis_out_tvalid <= 1'b0;
            m_axis_out_tlast <= 1'b0;
            m_axis_out_tdata <= 64'd0;
            m_axis_out_tkeep <= 8'd0;
            cnt_cycles <= 64'd0;
            cnt_msb <= 64'd0;
            cnt_corr <= 64'd0;
            gmax <= 32'd0;
            predicted <= 32'd0;
            unconf <= 16'd0;
            list_len <= 16'd0;
            st_arg_err <= 1'b0;
            st_frame_err <= 1'b0;
            st_skip2 <= 1'b0;
            st_diag <= 1'b0;
            pk_data <= 64'd0;
            pk_keep <= 8'd0;
            pk_pos <= 4'd0;
            nx_v <= 1'b0;
            row_v <= 1'b0;
            f_more <= 1'b0;
        end else begin
            if (state != S_IDLE) cnt_cycles <= cnt_cycles + 64'd1;
            cnt_msb <= cnt_msb + {{(63-PB){1'b0}}, popcount(pe_wr_msb)};
            cnt_corr <= cnt_corr + {{(63-PB){1'b0}}, popcount(pe_wr_corr)};
            if (x_ferr || g_ferr) st_frame_err <= 1'b1;
            if (m_axis_out_tvalid && m_axis_out_tready) m_axis_out_tvalid <= 1'b0;

            case (state)
            S_IDLE: if (start_job) begin
                cnt_cycles <= 64'd1;
                cnt_msb <= 64'd0;
                cnt_corr <= 64'd0;
                gmax <= 32'd0;
                predicted <= 32'd0;
                unconf <= 16'd0;
                list_len <= 16'd0;
                st_frame_err <= 1'b0;
                st_skip2 <= 1'b0;
                st_diag <= args_ok && use_diag;
                st_arg_err <= !args_ok;
                j_mode <= r_mode;
                j_o <= r_o;
                j_k <= r_k;
                j_t <= r_t;
                j_beta <= r_beta;
                j_maxin <= r_maxin;
                pk_data <= 64'd0;
                pk_keep <= 8'd0;
                pk_pos <= 4'd0;
                nx_v <= 1'b0;
                row_v <= 1'b0;
                f_more <= 1'b0;
                j_kb <= r_kb;
                j_diag <= use_diag;
                j_rows <= use_diag ? r_oblk : r_o;
                j_cols <= use_diag ? r_k : r_kb;
                j_xbeats <= (r_k + XPB[15:0] - 16'd1) >> XPBB;
                j_gbeats <= (r_o + GPB[15:0] - 16'd1) >> GPBB;
                phase2 <= 1'b0;
                cur_v <= 1'b0;
                steps_done <= 32'd0;
                o_c <= {OB{1'b0}};
                kb_c <= {CB{1'b0}};
                idx_c <= 16'd0;
                pass_start <= 1'b1;
                state <= args_ok ? S_PASS : S_DONE;
            end

            S_PASS: begin
                if (cur_v) begin
                    if (step_end) begin
                        o_c <= {OB{1'b0}};
                        kb_c <= {CB{1'b0}};
                        idx_c <= 16'd0;
                        steps_done <= steps_done + 32'd1;
                        if (last_step || !both_full) cur_v <= 1'b0;
                    end else if (phase2) begin
                        idx_c <= idx_c + 16'd1;
                    end else if (last_kb) begin
                        kb_c <= {CB{1'b0}};
                        o_c <= o_c + 1'b1;
                    end else begin
                        kb_c <= kb_c + 1'b1;
                    end
                end else if (advance) begin
                    cur_v <= 1'b1;
                end else if (steps_done == j_t) begin
                    drain <= 3'd3;
                    state <= S_DRAIN;
                end
            end

            S_DRAIN: begin
                drain <= drain - 3'd1;
                if (drain == 3'd0) begin
                    o_c <= {OB{1'b0}};
                    kb_c <= {CB{1'b0}};
                    if (j_mode == MODE_FULL || phase2) begin
                        state <= S_OUT;
                        f_more <= 1'b1;
                    end else begin
                        scan_dec <= 1'b0;
                        state <= S_SCAN;
                    end
                end
            end

            S_SCAN: begin    // one address per cycle over the O x KB tile
                if (last_kb) begin
                    kb_c <= {CB{1'b0}};
                    if (last_o) begin
                        o_c <= {OB{1'b0}};
                        drain <= 3'd3;
                        state <= S_SCAN_DRAIN;
                    end else o_c <= o_c + 1'b1;
                end else kb_c <= kb_c + 1'b1;
            end

            S_SCAN_DRAIN: begin
                drain <= drain - 3'd1;
                if (drain == 3'd0) begin
                    red_p <= {(PB+1){1'b0}};
                    if (!scan_dec) gmax <= j_maxin;
                    state <= S_RED;
                end
            end

            S_RED: begin     // reduce the per-PE results, one PE per cycle
                if (!scan_dec) begin
                    if (red_max > gmax) gmax <= red_max;
                end else begin
                    predicted <= predicted + {16'd0, red_conf};
                    unconf <= unconf + red_list;
                    if (red_list > list_len) list_len <= red_list;
                end
                red_p <= red_p + 1'b1;
                if (red_p == P[PB:0] - 1'b1) begin
                    if (!scan_dec) begin
                        thr <= 49'd0;
                        thr_i <= 5'd0;
                        state <= (j_mode == MODE_PROBE) ? S_DONE : S_THR;
                    end else begin
                        o_c <= {OB{1'b0}};
                        kb_c <= {CB{1'b0}};
                        state <= S_PASS;     // pass 2 (unless overridden below)
                        phase2 <= 1'b1;
                        pass_start <= 1'b1;
                        steps_done <= 32'd0;
                        idx_c <= 16'd0;
                        cur_v <= 1'b0;
                    end
                end
            end

            S_THR: begin     // thr = beta_q * max|G_msb|, one bit of beta_q per cycle
                if (j_beta[thr_i]) thr <= thr + ({17'd0, gmax} << thr_i);
                thr_i <= thr_i + 5'd1;
                if (thr_i == 5'd16) begin
                    scan_dec <= 1'b1;
                    state <= S_SCAN;
                end
            end

            S_OUT: begin
                if (rd_v) begin     // fetch row {o_c, kb_c}
                    m1_n <= fetch_n;
                    m1_rot <= fetch_rot;
                    m1_last <= last_o && last_kb;
                    if (last_kb) begin
                        kb_c <= {CB{1'b0}};
                        if (last_o) f_more <= 1'b0;
                        else o_c <= o_c + 1'b1;
                    end else kb_c <= kb_c + 1'b1;
                end
                if (rdv2) begin     // the read data is on pe_acc now
                    nx <= pe_acc;
                    nx_n <= m2_n;
                    nx_rot <= m2_rot;
                    nx_last <= m2_last;
                    nx_v <= 1'b1;
                end
                if (row_v && slot_free) begin
                    if (j_mode == MODE_FULL) begin
                        m_axis_out_tdata <= {{16{lane_val[47]}}, lane_val};
                        m_axis_out_tkeep <= 8'hFF;
                        m_axis_out_tlast <= row_last && row_end;
                        m_axis_out_tvalid <= 1'b1;
                    end else if (beat_end) begin
                        m_axis_out_tdata <= pk_data | nb_data;
                        m_axis_out_tkeep <= pk_keep | nb_keep;
                        m_axis_out_tlast <= row_last && row_end;
                        m_axis_out_tvalid <= 1'b1;
                        pk_data <= 64'd0;
                        pk_keep <= 8'd0;
                        pk_pos <= 4'd0;
                    end else begin
                        pk_data <= pk_data | nb_data;
                        pk_keep <= pk_keep | nb_keep;
                        pk_pos <= pos_next;
                    end
                    lane <= lane_next[PB:0];
                    if (row_end) begin
                        row_v <= 1'b0;
                        if (row_last) state <= S_OUT_FLUSH;
                    end
                end
                if (nx_v && (!row_v || (slot_free && row_end && !row_last))) begin
                    row <= nx;
                    row_n <= nx_n;
                    row_rot <= nx_rot;
                    row_last <= nx_last;
                    row_v <= 1'b1;
                    lane <= {(PB+1){1'b0}};
                    nx_v <= 1'b0;
                end
            end

            S_OUT_FLUSH: if (slot_free) state <= S_DONE;

            S_DONE: state <= S_IDLE;

            default: state <= S_IDLE;
            endcase

            // phase 2 is needed only if some weight was not confident
            if (state == S_RED && scan_dec && red_p == P[PB:0] - 1'b1
                && list_len == 16'd0 && red_list == 16'd0) begin
                phase2 <= 1'b1;
                st_skip2 <= 1'b1;
                o_c <= {OB{1'b0}};
                kb_c <= {CB{1'b0}};
                f_more <= 1'b1;
                state <= S_OUT;
            end
        end
    end
    always @(posedge ap_clk) begin
        if (rst) begin
            rdv1 <= 1'b0;
            rdv2 <= 1'b0;
        end else begin
            rdv1 <= rd_v;
            rdv2 <= rdv1;
        end
        m2_n <= m1_n;
        m2_last <= m1_last;
        m2_rot <= m1_rot;
    end


    // ------------------------------------------------------------------------------------------
    // Processing elements
    // ------------------------------------------------------------------------------------------
    genvar p, kb;
    generate
        for (p = 0; p < P; p = p + 1) begin : pe
            wire [8*KBMAX-1:0] x_lane;
            for (kb = 0; kb < KBMAX; kb = kb + 1) begin : xl
                assign x_lane[8*kb +: 8] = xcur[8*(kb*P + p) +: 8];
            end
            psg_pe #(.PB(PB), .OB(OB), .KBB(KBB), .KBMAX(KBMAX), .OMAX(OMAX), .KD(KD), .KDB(KDB), .CB(CB)) u (
                .clk(ap_clk), .rst(rst), .clear(start_job), .lane_id(p[PB-1:0]), .k_len(j_k),
                .o_len(j_o), .diag(j_diag), .x_diag(xcur[8*KD-1:0]),
                .op_v(op_v), .op_kind(op_kind), .op_first(op_first), .op_list(phase2),
                .op_o(o_c), .op_kb(kb_c), .op_idx(idx_c), .x_lane(x_lane), .g_all(gcur[16*OMAX-1:0]),
                .scan_v(scan_v), .rd_v(rd_v), .scan_decide(scan_dec), .scan_o(o_c), .scan_kb(kb_c), .thr(thr),
                .rd_acc(pe_acc[48*p +: 48]), .lane_max(pe_max[32*p +: 32]), .n_list(pe_list[16*p +: 16]),
                .n_conf(pe_conf[16*p +: 16]), .wr_msb(pe_wr_msb[p]), .wr_corr(pe_wr_corr[p]));
        end
    endgenerate

    // buffer padding beyond the tile (present only when the beat size does not divide it)
    wire _unused_ok = &{1'b0, kb_first[31:16], o_c32, xcur, gcur, src, lane_next, s_axi_control_araddr[1:0], wa[1:0], 1'b0};
endmodule
`default_nettype wire
