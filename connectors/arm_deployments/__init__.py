"""ARM deployments of resource groups (Microsoft.Resources/deployments) and what they touched."""
