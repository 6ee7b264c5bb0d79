// requantize: y = fit(round(x * multiplier / 2**shift)), bit for bit intref.spec.requant.requantize.
//
// One element per clock, two pipeline stages (latency 2). Synthesizable: no real numbers, no
// system functions; every width is explicit.
//
//   stage 1  p = x * multiplier                 exact, IN_BITS + 33 bits (|multiplier| <= 2**31
//                                                needs 33 bits: batch_frexp can round a mantissa
//                                                up to exactly 2**31)
//   stage 2  r = (p + bias) >>> shift           one rounding step, the bias names the dialect:
//              floor         0
//              half_up       2**(shift-1)                         (TOSA SINGLE_ROUND)
//              half_away     2**(shift-1), minus 1 when p < 0      (ties away from zero)
//              half_even     2**(shift-1) - 1 + p[shift]           (ties to the even quotient)
//              double_round  2**(shift-1), and +-2**30 when shift > 31 (TOSA DOUBLE_ROUND)
//            every bias is 0 when shift == 0 (no rounding);
//            y = clamp(r) to int<OUT_BITS> (SATURATE = 1) or the low OUT_BITS bits of r (SATURATE = 0)
//
// Widths: |p| <= 2**(IN_BITS + 31) and bias <= 2**63 + 2**30 for shift <= 64, so W = max(IN_BITS + 33,
// 64) + 2 bits hold p + bias exactly: nothing is rounded or wrapped before the one rounding step.
// REQUIRE shift <= 64 (the default 6-bit port carries 0..63; intref allows up to 127, a graph that
// uses more needs a wider W).
`timescale 1ns/1ps
module requantize #(
    parameter ROUNDING   = "half_even",   // half_even | half_up | half_away | double_round | floor
    parameter SATURATE   = 1,             // 1: saturate (clamp), 0: wrap (keep the low OUT_BITS bits)
    parameter IN_BITS    = 32,
    parameter OUT_BITS   = 8,
    parameter SHIFT_BITS = 6
) (
    input  wire                       clk,
    input  wire                       in_valid,
    input  wire signed [IN_BITS-1:0]  x,
    input  wire signed [32:0]         multiplier,
    input  wire        [SHIFT_BITS-1:0] shift,
    output reg                        out_valid,
    output reg  signed [OUT_BITS-1:0] y
);
    localparam P_BITS = IN_BITS + 33;
    localparam W      = (P_BITS > 64 ? P_BITS : 64) + 2;

    // ---- stage 1: the exact product ----
    reg signed [P_BITS-1:0]   p1;
    reg        [SHIFT_BITS-1:0] s1;
    reg                       v1;
    always @(posedge clk) begin
        p1 <= x * multiplier;          // both signed: sign-extended to P_BITS, exact
        s1 <= shift;
        v1 <= in_valid;
    end

    // ---- stage 2: one rounding step, then fit ----
    wire signed [W-1:0] p    = p1;     // sign-extended
    wire signed [W-1:0] one  = 1;
    wire signed [W-1:0] half = (s1 == 0) ? {W{1'b0}} : (one <<< (s1 - 1));
    wire signed [W-1:0] dr   = (s1 > 31) ? (p1[P_BITS-1] ? -(one <<< 30) : (one <<< 30)) : {W{1'b0}};
    wire signed [W-1:0] odd  = p[s1] ? one : {W{1'b0}};   // bit 0 of floor(p / 2**shift)
    wire signed [W-1:0] bias =
        (s1 == 0)                   ? {W{1'b0}} :
        (ROUNDING == "floor")        ? {W{1'b0}} :
        (ROUNDING == "half_up")      ? half :
        (ROUNDING == "half_away")    ? (p1[P_BITS-1] ? half - one : half) :
        (ROUNDING == "half_even")    ? half - one + odd :
        (ROUNDING == "double_round") ? half + dr :
                                       {W{1'bx}};          // unknown dialect: X, caught by any compare
    wire signed [W-1:0] r    = (p + bias) >>> s1;

    wire signed [W-1:0] y_max = (one <<< (OUT_BITS - 1)) - one;
    wire signed [W-1:0] y_min = -(one <<< (OUT_BITS - 1));
    wire signed [W-1:0] fitted = (SATURATE == 0) ? r : (r > y_max ? y_max : (r < y_min ? y_min : r));

    always @(posedge clk) begin
        y         <= fitted[OUT_BITS-1:0];
        out_valid <= v1;
    end
endmodule
