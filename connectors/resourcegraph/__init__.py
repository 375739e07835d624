"""Azure Resource Graph: the resources of the tenant, paged, as CMDB configuration items."""
