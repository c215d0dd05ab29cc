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
    wire        [3:0] x_msb = x[7:4];   // two's complement, read as such by shift_add4
    wire        [3:0] x_lsb = x[3:0];
    wire signed [9:0] g_msb = g[15:6];
    wire        [5:0] g_lsb = g[5:0];

    // a 4-bit a (two's complement when a_signed: bit 3 weighs -8) times a 14-bit signed b, as a
    // shift-add over the bits of a; every product below fits 14 signed bits
    function signed [13:0] shift_add4;
        input [3:0] a;
        input a_signed;
        input signed [13:0] b;
        begin
            shift_add4 = (a[0] ? b : 14'sd0) + (a[1] ? (b <<< 1) : 14'sd0) + (a[2] ? (b <<< 2) : 14'sd0);
            if (a[3]) shift_add4 = a_signed ? shift_add4 - (b <<< 3) : shift_add4 + (b <<< 3);
        end
    endfunction

    wire signed [13:0] g_msb_w = {{4{g_msb[9]}}, g_msb};
    wire signed [13:0] g_lsb_w = {8'd0, g_lsb};
    wire signed [13:0] pp_ml = shift_add4(x_msb, 1'b1, g_lsb_w);   // x_msb * g_lsb, in [-504, 441]
    wire signed [13:0] pp_lm = shift_add4(x_lsb, 1'b0, g_msb_w);   // x_lsb * g_msb
    wire signed [13:0] pp_ll = shift_add4(x_lsb, 1'b0, g_lsb_w);   // x_lsb * g_lsb, in [0, 945]

    assign p_msb  = shift_add4(x_msb, 1'b1, g_msb_w);             // x_msb * g_msb
    assign p_corr = {{6{pp_ml[13]}}, pp_ml, 4'd0}
                  + {{4{pp_lm[13]}}, pp_lm, 6'd0}
                  + {{10{pp_ll[13]}}, pp_ll};
endmodule
`default_nettype wire
