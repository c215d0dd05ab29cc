// Split multiplier of the PSG contract, v2 (docs/contracts.md section 1).
//
//   x = x_msb * 16 + x_lsb   x_msb = min((x + 8) >> 4, 7) int4 in [-8, 7],  x_lsb int5 in [-8, 15]
//   g = g_msb * 64 + g_lsb   g_msb = min((g + 32) >> 6, 511) int10,         g_lsb int7 in [-32, 63]
//   x * g = (x_msb*g_msb << 10) + (x_msb*g_lsb << 4) + (x_lsb*g_msb << 6) + x_lsb*g_lsb
//
// p_msb is the predictor's partial product; p_corr is the sum of the three correction partial
// products, needed only for weights whose prediction is not confident. Every product is a
// shift-add over the bits of its 4- or 5-bit x operand, so synthesis builds it from LUTs and carry
// chains and never spends a DSP48 on it.
`default_nettype none
module psg_mul_split (
    input  wire signed [7:0]  x,
    input  wire signed [15:0] g,
    output wire signed [13:0] p_msb,   // x_msb * g_msb, in [-4088, 4096]
    output wire signed [23:0] p_corr   // the three correction partial products, shifted and summed
);
    // the rounding split (contract v2): r is the bit below the MSBs unless the MSBs are already the
    // largest code (x[7:3] == 5'b01111, g[15:5] == 11'b01111111111: the saturated top codes); the
    // MSBs take r as an increment, which then never wraps, and the remainder takes it as its sign
    wire       rx    = x[3] && (x[7:3] != 5'b01111);
    wire       rg    = g[5] && (g[15:5] != 11'b01111111111);
    wire [3:0] x_msb = x[7:4] + {3'd0, rx};
    wire [4:0] x_lsb = {rx, x[3:0]};
    wire [9:0] g_msb = g[15:6] + {9'd0, rg};
    wire [6:0] g_lsb = {rg, g[5:0]};

    // Each product is a shift-add over the bits of its x operand (two's complement: the top bit of
    // x_msb weighs -8, that of x_lsb -16), at the width its range needs.
    wire signed [13:0] gm = {{4{g_msb[9]}}, g_msb};
    wire signed [9:0]  gl = {{3{g_lsb[6]}}, g_lsb};
    wire signed [19:0] gg = {{4{g[15]}}, g};
    assign p_msb = (x_msb[0] ? gm : 14'sd0) + (x_msb[1] ? gm <<< 1 : 14'sd0)
                 + (x_msb[2] ? gm <<< 2 : 14'sd0) - (x_msb[3] ? gm <<< 3 : 14'sd0);
    // x_msb * g_lsb, in [-504, 441]
    wire signed [9:0]  pp_ml = (x_msb[0] ? gl : 10'sd0) + (x_msb[1] ? gl <<< 1 : 10'sd0)
                             + (x_msb[2] ? gl <<< 2 : 10'sd0) - (x_msb[3] ? gl <<< 3 : 10'sd0);
    // x_lsb*g_msb << 6 + x_lsb*g_lsb is x_lsb * g (the unrounded g): two correction products in
    // one, in [-491520, 491505]
    wire signed [19:0] pp_lg = (x_lsb[0] ? gg : 20'sd0) + (x_lsb[1] ? gg <<< 1 : 20'sd0)
                             + (x_lsb[2] ? gg <<< 2 : 20'sd0) + (x_lsb[3] ? gg <<< 3 : 20'sd0)
                             - (x_lsb[4] ? gg <<< 4 : 20'sd0);
    assign p_corr = {{10{pp_ml[9]}}, pp_ml, 4'd0} + {{4{pp_lg[19]}}, pp_lg};
endmodule

`default_nettype wire
