"""picklematrix: which objects survive which Dask compute path, under which versions."""

__version__ = "0.1.0"
