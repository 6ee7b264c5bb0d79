// Plain Verilog testbench for dot_tile: y = a @ b^T from intref's golden a [M, K] and b [N, K]
// (int8), one dot product per output element in row-major order, K / LANES beats each; the int32
// results written as y.hex.
//
//   +golden=DIR  the golden case (DIR/tensors/a.hex, b.hex)     +hw=DIR  the dump (DIR/y.hex)
//   -Ptb_dot_tile.M=.. N=.. K=..   (K a multiple of LANES)
`timescale 1ns/1ps
module tb_dot_tile;
    parameter M = 64;
    parameter N = 64;
    parameter K = 64;
    parameter LANES = 16;

    reg [7:0] a_mem [0:M*K-1];
    reg [7:0] b_mem [0:N*K-1];
    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg                   in_valid = 1'b0, in_first = 1'b0, in_last = 1'b0;
    reg  [8*LANES-1:0]    a_vec = 0, b_vec = 0;
    wire                  out_valid;
    wire signed [31:0]    acc;

    dot_tile #(.LANES(LANES), .ACC_BITS(32)) dut (.clk(clk), .in_valid(in_valid), .in_first(in_first),
        .in_last(in_last), .a(a_vec), .b(b_vec), .out_valid(out_valid), .acc(acc));

    wire done;
    hex_sink #(.W(32), .N(M * N), .NAME("y")) sink (clk, out_valid, acc, done);

    reg [8*512-1:0] golden;
    reg [8*600-1:0] path;
    integer i, j, beat, lane;

    initial begin
        if (!$value$plusargs("golden=%s", golden)) begin
            $display("tb_dot_tile: need +golden=DIR +hw=DIR");
            $finish;
        end
        if (K % LANES != 0) begin $display("tb_dot_tile: K=%0d is not a multiple of LANES=%0d", K, LANES); $finish; end
        $sformat(path, "%0s/tensors/a.hex", golden);  $readmemh(path, a_mem);
        $sformat(path, "%0s/tensors/b.hex", golden);  $readmemh(path, b_mem);
        for (i = 0; i < M; i = i + 1)
            for (j = 0; j < N; j = j + 1)
                for (beat = 0; beat < K / LANES; beat = beat + 1) begin
                    @(negedge clk);
                    for (lane = 0; lane < LANES; lane = lane + 1) begin
                        a_vec[8*lane +: 8] = a_mem[i*K + beat*LANES + lane];
                        b_vec[8*lane +: 8] = b_mem[j*K + beat*LANES + lane];
                    end
                    in_valid = 1'b1;
                    in_first = (beat == 0);
                    in_last  = (beat == K / LANES - 1);
                end
        @(negedge clk);
        in_valid = 1'b0;
        wait (done);
        $display("tb_dot_tile: %0d results written", M * N);
        $finish;
    end
endmodule
