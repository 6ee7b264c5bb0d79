// hex_sink (testbench only): writes DATA as one hex word a line, the `intref golden` .hex format
// (two's complement, W bits rounded up to whole nibbles), for each clock with valid high, to
// <+hw=DIR>/<NAME>.hex: the file name `intref verify` looks for. After N words it closes the file
// and raises done.
`timescale 1ns/1ps
module hex_sink #(
    parameter W    = 8,
    parameter N    = 1,
    parameter NAME = "y"
) (
    input  wire         clk,
    input  wire         valid,
    input  wire [W-1:0] data,
    output reg          done
);
    reg [8*512-1:0] hw;
    reg [8*600-1:0] path;
    integer f, count;

    initial begin
        done = 1'b0;
        count = 0;
        if (!$value$plusargs("hw=%s", hw)) begin $display("hex_sink: need +hw=DIR"); $finish; end
        $sformat(path, "%0s/%0s.hex", hw, NAME);
        f = $fopen(path, "w");
        if (f == 0) begin $display("hex_sink: cannot write %0s", path); $finish; end
    end

    always @(posedge clk) begin
        if (valid && !done) begin
            $fwrite(f, "%h\n", data);
            count = count + 1;
            if (count == N) begin
                $fclose(f);
                done <= 1'b1;
            end
        end
    end
endmodule
