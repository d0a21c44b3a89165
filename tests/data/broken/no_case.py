import dask
result = dask.delayed(1)
