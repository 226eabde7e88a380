"""Files in folders and buckets: listing, fetching to a local spool, atomic puts (fsspec, s3fs)."""
