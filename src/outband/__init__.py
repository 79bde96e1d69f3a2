"""outband: out-of-band management with Intel AMT's features and wire protocols.

The package is layered (see DESIGN.md): ``proto`` holds sans-I/O protocol cores, ``aio`` the asyncio
adapters, ``client`` the device SDK, ``engine`` the managed endpoint, ``console`` the fleet console and
``cli`` the command line.  Imports only point downwards: cli -> console/engine -> client -> aio -> proto.
"""

__version__ = "0.1.0"
