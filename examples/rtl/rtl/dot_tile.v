// dot_tile: a pipelined int8 x int8 -> int32 dot product, the inner loop of a GEMM tile.
//
//   acc = sum over beats of sum_{i < LANES} a[i] * b[i]         (exact: no rounding, no saturation)
//
// Each beat brings LANES int8 pairs, lane i in bits [8*i+7 : 8*i] of a and b. A dot product of
// length K = LANES * beats starts with in_first and ends with in_last; out_valid pulses with the
// finished sum three clocks after its in_last beat. One beat per clock, back to back.
//
//   stage 1  LANES products, 16 bits each (|a*b| <= 2**14)
//   stage 2  their sum, 16 + log2(LANES) bits
//   stage 3  accumulate across beats in ACC_BITS (REQUIRE K * 2**14 < 2**(ACC_BITS-1): exact)
`timescale 1ns/1ps
module dot_tile #(
    parameter LANES    = 16,
    parameter ACC_BITS = 32
) (
    input  wire                       clk,
    input  wire                       in_valid,
    input  wire                       in_first,
    input  wire                       in_last,
    input  wire        [8*LANES-1:0]  a,
    input  wire        [8*LANES-1:0]  b,
    output reg                        out_valid,
    output reg  signed [ACC_BITS-1:0] acc
);
    // ---- stage 1: products ----
    reg        [16*LANES-1:0] prod;            // lane i's product in bits [16*i+15 : 16*i]
    reg                       v1, first1, last1;
    genvar i;
    generate
        for (i = 0; i < LANES; i = i + 1) begin : lane
            wire signed [7:0] a_i = a[8*i +: 8];
            wire signed [7:0] b_i = b[8*i +: 8];
            wire signed [15:0] p_i = a_i * b_i;
            always @(posedge clk) prod[16*i +: 16] <= p_i;
        end
    endgenerate
    always @(posedge clk) begin
        v1 <= in_valid; first1 <= in_first; last1 <= in_last;
    end

    // ---- stage 2: sum of the lanes ----
    reg signed [ACC_BITS-1:0] lane_sum;
    reg signed [15:0]         term;
    integer k;
    always @* begin
        lane_sum = {ACC_BITS{1'b0}};
        for (k = 0; k < LANES; k = k + 1) begin
            term = prod[16*k +: 16];
            lane_sum = lane_sum + term;         // term is signed: sign-extended to ACC_BITS
        end
    end
    reg signed [ACC_BITS-1:0] sum2;
    reg                       v2, first2, last2;
    always @(posedge clk) begin
        sum2 <= lane_sum;
        v2 <= v1; first2 <= first1; last2 <= last1;
    end

    // ---- stage 3: accumulate across beats ----
    reg signed [ACC_BITS-1:0] total;
    always @(posedge clk) begin
        if (v2) total <= (first2 ? {ACC_BITS{1'b0}} : total) + sum2;
        out_valid <= v2 & last2;
    end
    always @* acc = total;
endmodule
