"""Cost Management exports in blob storage: manifests and partitions, ingested resumably."""
