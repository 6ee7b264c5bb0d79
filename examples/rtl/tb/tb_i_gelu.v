// Plain Verilog testbench for i_gelu: intref's golden input q in, the output written as y.hex.
//
//   +golden=DIR  the golden case (DIR/tensors/q.hex)     +hw=DIR  the dump (DIR/y.hex)
//   -Ptb_i_gelu.N=<elements> -Ptb_i_gelu.IN_BITS=<bits of q>
//   -Ptb_i_gelu.B_INT=.. C_INT=.. SHIFT_INT=.. GUARD_SHIFT=..   the node's attributes in the manifest
//                                                              (prepare_gelu's GeluParams)
`timescale 1ns/1ps
module tb_i_gelu;
    parameter N = 65536;
    parameter IN_BITS = 16;
    parameter OUT_BITS = 32;
    parameter signed [63:0] B_INT = -64'sd20494;
    parameter signed [63:0] C_INT = -64'sd464705548;
    parameter signed [63:0] SHIFT_INT = -64'sd28364;
    parameter GUARD_SHIFT = 14;

    reg [IN_BITS-1:0] q_mem [0:N-1];
    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg                       in_valid = 1'b0;
    reg  signed [IN_BITS-1:0] q = 0;
    wire                      out_valid;
    wire signed [OUT_BITS-1:0] y;

    i_gelu #(.IN_BITS(IN_BITS), .OUT_BITS(OUT_BITS), .B_INT(B_INT), .C_INT(C_INT), .SHIFT_INT(SHIFT_INT),
             .GUARD_SHIFT(GUARD_SHIFT)) dut (.clk(clk), .in_valid(in_valid), .q(q), .out_valid(out_valid), .y(y));

    wire done;
    hex_sink #(.W(OUT_BITS), .N(N), .NAME("y")) sink (clk, out_valid, y, done);

    reg [8*512-1:0] golden;
    reg [8*600-1:0] path;
    integer i;

    initial begin
        if (!$value$plusargs("golden=%s", golden)) begin
            $display("tb_i_gelu: need +golden=DIR +hw=DIR");
            $finish;
        end
        $sformat(path, "%0s/tensors/q.hex", golden);  $readmemh(path, q_mem);
        for (i = 0; i < N; i = i + 1) begin
            @(negedge clk);
            in_valid = 1'b1;
            q = q_mem[i];
        end
        @(negedge clk);
        in_valid = 1'b0;
        wait (done);
        $display("tb_i_gelu: %0d elements written", N);
        $finish;
    end
endmodule
