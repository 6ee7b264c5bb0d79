// i_gelu: I-BERT's integer GELU (Alg. 2), bit for bit intref.spec.gelu.i_gelu.
//
//   result = q * (floor(sgn(q) * ((min(|q|, -B_INT) + B_INT)**2 + C_INT) / 2**GUARD_SHIFT) + SHIFT_INT)
//
// The constants are the integers intref.quant.prepare_gelu produces (GeluParams b_int, c_int,
// shift_int, guard_shift): pass them as parameters. One element per clock, three pipeline stages
// (latency 3). Synthesizable: no real numbers, no system functions; every width is explicit.
//
//   stage 1  t = min(|q|, -B_INT), d = t + B_INT     B_INT <= d <= 0
//   stage 2  P = d*d + C_INT                          exact in 64 bits (GeluParams proves every
//            y = floor(sgn * P / 2**GUARD_SHIFT)      intermediate fits int64 for every q in
//            m = y + SHIFT_INT                        int<IN_BITS>, or refuses the constants)
//   stage 3  result = q * m, the low OUT_BITS bits    REQUIRE OUT_BITS holds GeluParams.output_range
//
// floor(-P / 2**g) is an arithmetic shift right of -P (toward -infinity), never a truncation.
`timescale 1ns/1ps
module i_gelu #(
    parameter IN_BITS     = 16,
    parameter OUT_BITS    = 32,
    parameter signed [63:0] B_INT     = -64'sd20494,
    parameter signed [63:0] C_INT     = -64'sd464705548,
    parameter signed [63:0] SHIFT_INT = -64'sd16384,
    parameter GUARD_SHIFT = 14
) (
    input  wire                       clk,
    input  wire                       in_valid,
    input  wire signed [IN_BITS-1:0]  q,
    output reg                        out_valid,
    output reg  signed [OUT_BITS-1:0] y
);
    localparam W = 64;

    // ---- stage 1: clip |q| at -B_INT ----
    wire signed [W-1:0] q_w   = q;                       // sign-extended
    wire signed [W-1:0] abs_q = q_w[W-1] ? -q_w : q_w;   // |q| <= 2**(IN_BITS-1): no overflow in 64 bits
    wire signed [W-1:0] clip  = -B_INT;
    reg  signed [W-1:0] d1;
    reg  signed [W-1:0] q1;
    reg                 v1;
    always @(posedge clk) begin
        d1 <= (abs_q < clip ? abs_q : clip) + B_INT;
        q1 <= q_w;
        v1 <= in_valid;
    end

    // ---- stage 2: polynomial, signed floor, add the shift constant ----
    wire signed [W-1:0] poly = d1 * d1 + C_INT;
    wire signed [W-1:0] sp   = (q1 == 0) ? {W{1'b0}} : (q1[W-1] ? -poly : poly);
    reg  signed [W-1:0] m2;
    reg  signed [W-1:0] q2;
    reg                 v2;
    always @(posedge clk) begin
        m2 <= (sp >>> GUARD_SHIFT) + SHIFT_INT;
        q2 <= q1;
        v2 <= v1;
    end

    // ---- stage 3: the exact product ----
    wire signed [W-1:0] result = q2 * m2;
    always @(posedge clk) begin
        y         <= result[OUT_BITS-1:0];
        out_valid <= v2;
    end
endmodule
