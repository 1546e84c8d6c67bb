"""Design sweeps: spec, sampling, engine (process pool / Dask), Parquet
shards with resume, surrogate export and Plotly dashboards.

Heavy dependencies (pandas, pyarrow, dask, plotly, scipy) are imported inside
the functions that need them, so importing this package is cheap.
"""
