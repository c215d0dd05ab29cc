// Double buffer for one input stream of the PSG engine (x or g).
//
// A reduction step is NBEATS beats of PER_BEAT elements of EW bits, element 0 in the low bits of
// the first beat. Beats fill `nxt`; when the step is complete the buffer stops accepting until the
// engine moves `nxt` to `cur` (advance), so loading the next step overlaps computing this one. The
// cycle of the move already accepts the next step's first beat, so a one-beat step can follow
// every cycle.
// A pass is `steps` steps; TLAST must be set on the last beat of the pass and only there
// (frame_err pulses otherwise).
`default_nettype none
module psg_stream_buf #(
    parameter integer EW       = 8,
    parameter integer PER_BEAT = 8,
    parameter integer ELEMS    = 64     // buffer size in elements, a multiple of PER_BEAT
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     start,      // begin a pass: forget what was loaded
    input  wire                     active,     // accept beats
    input  wire [15:0]              nbeats,     // beats per step (>= 1)
    input  wire [31:0]              steps,      // steps per pass (>= 1)
    input  wire [EW*PER_BEAT-1:0]   s_tdata,
    input  wire                     s_tvalid,
    output wire                     s_tready,
    input  wire                     s_tlast,
    output reg                      full,       // nxt holds a complete step
    input  wire                     advance,    // move nxt to cur (only while full)
    output reg  [EW*ELEMS-1:0]      cur,
    output reg                      frame_err
);
    localparam integer BW = EW * PER_BEAT;

    reg [EW*ELEMS-1:0] nxt;
    reg [15:0] beat;
    reg [31:0] loaded;     // steps completed in this pass

    wire pass_open = loaded != steps;
    assign s_tready = active && (!full || advance) && pass_open;
    wire take = s_tvalid && s_tready;
    wire last_beat = beat == nbeats - 16'd1;
    wire expect_last = last_beat && (loaded == steps - 32'd1);

    always @(posedge clk) begin
        if (rst || start) begin
            full <= 1'b0;
            beat <= 16'd0;
            loaded <= 32'd0;
            frame_err <= 1'b0;
        end else begin
            frame_err <= take && (s_tlast != expect_last);
            if (advance) full <= 1'b0;
            if (take) begin
                if (last_beat) begin
                    beat <= 16'd0;
                    full <= 1'b1;
                    loaded <= loaded + 32'd1;
                end else begin
                    beat <= beat + 16'd1;
                end
            end
        end
    end

    // one write enable per beat slot (a decoder, not a shifter over the whole buffer)
    genvar b;
    generate
        for (b = 0; b < ELEMS / PER_BEAT; b = b + 1) begin : slot
            always @(posedge clk) begin
                if (take && beat == b) nxt[BW*b +: BW] <= s_tdata;
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (advance) cur <= nxt;
    end
endmodule
`default_nettype wire
