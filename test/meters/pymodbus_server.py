#!/usr/bin/python3
# An independent Modbus peer for the meter tests: a pymodbus (Debian python3-pymodbus)
# server on a serial device (RTU framing, e.g. one end of a socat pty pair) or on a
# loopback TCP port (Modbus TCP). Register contents come as JSON on argv:
#   {"units": {"1": {"ir": {"0": 17254, "1": 0}, "hr": {...}}}}
# Unmapped registers answer "illegal data address" (sparse blocks), like real meters.
# Prints READY on stdout once it serves; stops on SIGTERM or when stdin closes.
import asyncio
import json
import sys

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer


def block(d):
    return ModbusSparseDataBlock({int(k): int(v) for k, v in (d or {}).items()} or {65535: 0})


def context(spec):
    slaves = {}
    for unit, tables in spec["units"].items():
        slaves[int(unit)] = ModbusSlaveContext(
            di=block(tables.get("di")), co=block(tables.get("co")), hr=block(tables.get("hr")), ir=block(tables.get("ir")), zero_mode=True
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def main():
    mode, where, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    ctx = context(spec)
    if mode == "rtu":
        server = ModbusSerialServer(ctx, framer=ModbusRtuFramer, port=where, baudrate=int(spec.get("baudrate", 9600)), timeout=0.005, ignore_missing_slaves=True)
        await server.start()
        task = asyncio.create_task(server.serve_forever())
    else:
        server = ModbusTcpServer(ctx, framer=ModbusSocketFramer, address=("127.0.0.1", int(where)), ignore_missing_slaves=True, allow_reuse_address=True)
        task = asyncio.create_task(server.serve_forever())
        # READY only once the socket listens; a bind error ends the process with it.
        done, _ = await asyncio.wait({task, server.serving}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if task in done or server.serving not in done:
            print("FAILED", task.exception() if task.done() else "timeout", file=sys.stderr, flush=True)
            sys.exit(1)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    # Exit when the test process goes away (stdin closes).
    await loop.run_in_executor(None, sys.stdin.read)
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
