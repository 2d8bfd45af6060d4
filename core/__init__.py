"""depot-console core library.

Everything a site needs to build, publish, sign, move, verify and deliver precompiled depots.
This package never imports ``textual`` or ``console``: the TUI and the headless CLI are two faces
over the same functions, and scripts can use the library directly.
"""
