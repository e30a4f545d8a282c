"""Video data: the embedded motion dataset, Parquet shards, decoding and streaming into workers."""
