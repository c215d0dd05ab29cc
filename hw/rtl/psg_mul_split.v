// Split multiplier of the PSG contract (docs/contracts.md section 1).
//
//   x = x_msb * 16 + x_lsb   (x_msb int4, x_lsb in [0, 15])
//   g = g_msb * 64 + g_lsb   (g_msb int10, g_lsb in [0, 63])
//   x * g = (x_msb*g_msb << 10) + (x_msb*g_lsb << 4) + (x_lsb*g_msb << 6) + x_lsb*g_lsb
//
// p_msb is the predictor's partial product; p_corr is the sum of the three correction partial
// products, needed only for weights whose prediction is not confident. Every product has a 4-bit
// operand and is written as a shift-add over that operand's bits, so synthesis builds it from LUTs
// and carry chains and never spends a DSP48 on it.
`default_nettype none
module psg_mul_split (
    input  wire signed [7:0]  x,
    input  wire signed [15:0] g,
    output wire signed [13:0] p_msb,   // x_msb * g_msb, in [-4088, 4096]
    output wire signed [23:0] p_corr   // the three correction partial products, shifted and summed
);
    wire signed [3:0] x_msb = x[7:4];
    wire        [3:0] x_lsb = x[3:0];
    wire signed [9:0] g_msb = g[15:6];
    wire        [5:0] g_lsb = g[5:0];

    // a signed 4-bit times a signed b: bit 3 weighs -8 (two's complement)
    function signed [13:0] mul_s4_s10;
        input signed [3:0] a;
        input signed [9:0] b;
        reg signed [13:0] bw;
        begin
            bw = {{4{b[9]}}, b};
            mul_s4_s10 = (a[0] ? bw : 14'sd0) + (a[1] ? (bw <<< 1) : 14'sd0)
                       + (a[2] ? (bw <<< 2) : 14'sd0) - (a[3] ? (bw <<< 3) : 14'sd0);
        end
    endfunction

    // an unsigned 4-bit times a signed 10-bit
    function signed [13:0] mul_u4_s10;
        input [3:0] a;
        input signed [9:0] b;
        reg signed [13:0] bw;
        begin
            bw = {{4{b[9]}}, b};
            mul_u4_s10 = (a[0] ? bw : 14'sd0) + (a[1] ? (bw <<< 1) : 14'sd0)
                       + (a[2] ? (bw <<< 2) : 14'sd0) + (a[3] ? (bw <<< 3) : 14'sd0);
        end
    endfunction

    // a signed 4-bit times an unsigned 6-bit (result in [-504, 441])
    function signed [10:0] mul_s4_u6;
        input signed [3:0] a;
        input [5:0] b;
        reg signed [10:0] bw;
        begin
            bw = {5'd0, b};
            mul_s4_u6 = (a[0] ? bw : 11'sd0) + (a[1] ? (bw <<< 1) : 11'sd0)
                      + (a[2] ? (bw <<< 2) : 11'sd0) - (a[3] ? (bw <<< 3) : 11'sd0);
        end
    endfunction

    // an unsigned 4-bit times an unsigned 6-bit (result in [0, 945])
    function [9:0] mul_u4_u6;
        input [3:0] a;
        input [5:0] b;
        reg [9:0] bw;
        begin
            bw = {4'd0, b};
            mul_u4_u6 = (a[0] ? bw : 10'd0) + (a[1] ? (bw << 1) : 10'd0)
                      + (a[2] ? (bw << 2) : 10'd0) + (a[3] ? (bw << 3) : 10'd0);
        end
    endfunction

    wire signed [10:0] pp_ml = mul_s4_u6(x_msb, g_lsb);   // x_msb * g_lsb
    wire signed [13:0] pp_lm = mul_u4_s10(x_lsb, g_msb);  // x_lsb * g_msb
    wire        [9:0]  pp_ll = mul_u4_u6(x_lsb, g_lsb);   // x_lsb * g_lsb

    assign p_msb  = mul_s4_s10(x_msb, g_msb);
    assign p_corr = ({{9{pp_ml[10]}}, pp_ml, 4'd0})
                  + ({{4{pp_lm[13]}}, pp_lm, 6'd0})
                  + {14'd0, pp_ll};
endmodule
`default_nettype wire
