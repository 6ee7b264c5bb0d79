// Plain Verilog testbench: intref's golden input x (and the per-channel multiplier / shift that
// the graph's Requantize nodes hold) in, one requantize instance per node of the graph, each
// node's output written as <node>.hex where `intref verify` looks for it.
//
//   +golden=DIR   the golden case (DIR/tensors/x.hex, from `intref golden --format hex`)
//   +params=DIR   DIR/multiplier.hex (33-bit words) and DIR/shift.hex, one per channel
//   +hw=DIR       where the dump goes: DIR/y_half_even.hex, ...
//   -Ptb_requantize.N=<elements> -Ptb_requantize.CHANNELS=<channels of x's last axis>
//
// Deliberate faults for the flow's negative checks (each changes the y_half_even instance only):
//   -DFAULT_HALF_UP   built with ROUNDING="half_up"      -DFAULT_WRAP   built with SATURATE=0
//   -DFAULT_SHIFT     fed shift + 1 (an off-by-one shift)
`timescale 1ns/1ps
module tb_requantize;
    parameter N = 16;
    parameter CHANNELS = 16;

`ifdef FAULT_HALF_UP
    localparam HE_ROUNDING = "half_up";
`else
    localparam HE_ROUNDING = "half_even";
`endif
`ifdef FAULT_WRAP
    localparam HE_SATURATE = 0;
`else
    localparam HE_SATURATE = 1;
`endif
`ifdef FAULT_SHIFT
    localparam HE_SHIFT_ERROR = 1;
`else
    localparam HE_SHIFT_ERROR = 0;
`endif

    reg [31:0] x_mem [0:N-1];
    reg [32:0] m_mem [0:CHANNELS-1];
    reg [5:0]  s_mem [0:CHANNELS-1];

    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg               in_valid = 1'b0;
    reg signed [31:0] x = 0;
    reg signed [32:0] m = 0;
    reg        [5:0]  s = 0;

    wire       [6:0] s_he = s + HE_SHIFT_ERROR;     // the y_half_even instance's shift (7 bits: 63 + 1)
    wire             v_he, v_hu, v_ha, v_dr, v_fl, v_wr;
    wire signed [7:0] y_he, y_hu, y_ha, y_dr, y_fl, y_wr;

    requantize #(.ROUNDING(HE_ROUNDING), .SATURATE(HE_SATURATE), .SHIFT_BITS(7)) u_half_even
        (.clk(clk), .in_valid(in_valid), .x(x), .multiplier(m), .shift(s_he),
         .out_valid(v_he), .y(y_he));
    requantize #(.ROUNDING("half_up"))      u_half_up      (clk, in_valid, x, m, s, v_hu, y_hu);
    requantize #(.ROUNDING("half_away"))    u_half_away    (clk, in_valid, x, m, s, v_ha, y_ha);
    requantize #(.ROUNDING("double_round")) u_double_round (clk, in_valid, x, m, s, v_dr, y_dr);
    requantize #(.ROUNDING("floor"))        u_floor        (clk, in_valid, x, m, s, v_fl, y_fl);
    requantize #(.ROUNDING("half_even"), .SATURATE(0)) u_wrap (clk, in_valid, x, m, s, v_wr, y_wr);

    wire [5:0] done;
    hex_sink #(.N(N), .NAME("y_half_even"))    d_he (clk, v_he, y_he, done[0]);
    hex_sink #(.N(N), .NAME("y_half_up"))      d_hu (clk, v_hu, y_hu, done[1]);
    hex_sink #(.N(N), .NAME("y_half_away"))    d_ha (clk, v_ha, y_ha, done[2]);
    hex_sink #(.N(N), .NAME("y_double_round")) d_dr (clk, v_dr, y_dr, done[3]);
    hex_sink #(.N(N), .NAME("y_floor"))        d_fl (clk, v_fl, y_fl, done[4]);
    hex_sink #(.N(N), .NAME("y_wrap"))         d_wr (clk, v_wr, y_wr, done[5]);

    reg [8*512-1:0] golden, params;
    reg [8*600-1:0] path;
    integer i;

    initial begin
        if (!$value$plusargs("golden=%s", golden) || !$value$plusargs("params=%s", params)) begin
            $display("tb_requantize: need +golden=DIR +params=DIR +hw=DIR");
            $finish;
        end
        $sformat(path, "%0s/tensors/x.hex", golden);   $readmemh(path, x_mem);
        $sformat(path, "%0s/multiplier.hex", params);  $readmemh(path, m_mem);
        $sformat(path, "%0s/shift.hex", params);       $readmemh(path, s_mem);
        for (i = 0; i < N; i = i + 1) begin            // one element per clock, channel = i mod CHANNELS
            @(negedge clk);
            in_valid = 1'b1;
            x = x_mem[i];
            m = m_mem[i % CHANNELS];
            s = s_mem[i % CHANNELS];
        end
        @(negedge clk);
        in_valid = 1'b0;
        wait (&done);
        $display("tb_requantize: %0d elements x 6 nodes written", N);
        $finish;
    end
endmodule
