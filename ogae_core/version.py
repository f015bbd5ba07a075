"""The package version, in a module of its own so that any module can read it without
importing the package root (whose lazy ``Detector`` export would close an import cycle).

Examples
--------
>>> isinstance(__version__, str)
True
"""
__version__ = "0.1.0"
