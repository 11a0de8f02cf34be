#!/usr/bin/python3
# An independent peer for the charging tests: pymodbus (Debian python3-pymodbus) on one
# end of a socat pty pair, playing a Modbus RTU relay board (unit 2: coils 0-7, FC 01/05/0F)
# and an Eastron SDM630 metering three ports (unit 1: per-phase power at input registers
# 0x000C/E/10, per-phase import energy at 0x015A/C/E, float32 ABCD). A port draws its load
# only while its coil is on, like a charger behind a relay. Commands on stdin, one JSON per
# line: {"load": {"0": 500}}, {"stuck": true} (relays ignore writes), {"meter": false}
# (meter unit stops answering), {"di": {"0": 1}} (discrete input 0 of the relay board
# closes: a smoke detector's relay contact), {"ext": {"0": true}} (channel 0 is switched
# by a relay outside this peer, a GPIO relay of the gateway, whose state the test mirrors
# here; null hands it back to coil 0). Prints READY, then "COILS <bits>" after each coil
# change.
import asyncio, json, struct, sys, time

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.server.async_io import ModbusSerialServer
from pymodbus.transaction import ModbusRtuFramer

state = {"load": {0: 0.0, 1: 0.0, 2: 0.0}, "ext": {}, "stuck": False, "energy": [100.0, 200.0, 300.0], "t": time.monotonic()}


def f32(v):
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return [hi, lo]


class Coils(ModbusSparseDataBlock):
    def setValues(self, address, values):
        if state["stuck"]:
            return
        super().setValues(address, values)
        print("COILS " + "".join("1" if self.getValues(i, 1)[0] else "0" for i in range(8)), flush=True)


coils = Coils({i: 0 for i in range(8)})


class Meter(ModbusSparseDataBlock):
    def getValues(self, address, count=1):
        now = time.monotonic()
        dt = now - state["t"]
        state["t"] = now
        regs = {}
        for ch in range(3):
            on = state["ext"][ch] if ch in state["ext"] else coils.getValues(ch, 1)[0]
            w = state["load"][ch] if on else 0.0
            state["energy"][ch] += w * dt / 3600000.0
            for k, r in enumerate(f32(w)):
                regs[0x0C + 2 * ch + k] = r
            for k, r in enumerate(f32(230.0)):
                regs[0x00 + 2 * ch + k] = r
            for k, r in enumerate(f32(w / 230.0)):
                regs[0x06 + 2 * ch + k] = r
            for k, r in enumerate(f32(state["energy"][ch])):
                regs[0x15A + 2 * ch + k] = r
        for a, v in regs.items():
            self.values[a] = v
        return super().getValues(address, count)


inputs = ModbusSparseDataBlock({i: 0 for i in range(8)})
meter = Meter({a: 0 for a in list(range(0, 0x12)) + list(range(0x15A, 0x160))})
slaves = {
    1: ModbusSlaveContext(ir=meter, zero_mode=True),
    2: ModbusSlaveContext(co=coils, di=inputs, zero_mode=True),
}
ctx = ModbusServerContext(slaves=slaves, single=False)


async def control():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        cmd = json.loads(line)
        for k, v in cmd.get("load", {}).items():
            state["load"][int(k)] = float(v)
        for k, v in cmd.get("di", {}).items():
            inputs.setValues(int(k), [1 if v else 0])
        for k, v in cmd.get("ext", {}).items():
            if v is None:
                state["ext"].pop(int(k), None)
            else:
                state["ext"][int(k)] = bool(v)
        if "stuck" in cmd:
            state["stuck"] = bool(cmd["stuck"])
        if "meter" in cmd:
            if cmd["meter"]:
                ctx._slaves[1] = slaves[1]
            else:
                ctx._slaves.pop(1, None)
        print("OK", flush=True)


async def main():
    server = ModbusSerialServer(ctx, framer=ModbusRtuFramer, port=sys.argv[1], baudrate=9600, timeout=0.005, ignore_missing_slaves=True)
    await server.start()
    task = asyncio.create_task(server.serve_forever())
    print("READY", flush=True)
    await control()
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
