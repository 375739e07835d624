// Warden on Azure Container Apps: a user-assigned managed identity that is both the Azure Bot's
// identity and Warden's ARM/Graph/Key Vault identity, a Key Vault (RBAC) holding the secrets,
// PostgreSQL Flexible Server, the Azure Bot with its Teams channel, and a manual Container Apps
// job that runs the migrations before a rollout. See docs/deploy.md.
//
//   az deployment group create -g <rg> -f deploy/azure/main.bicep \
//     -p @deploy/azure/main.parameters.json
targetScope = 'resourceGroup'

@description('Region of every regional resource (the Azure Bot itself is global).')
param location string = resourceGroup().location

@description('Short lowercase prefix of resource names.')
@minLength(3)
@maxLength(12)
param namePrefix string = 'warden'

@description('Warden\'s image, e.g. myregistry.azurecr.io/warden:1.4.0 (built from the Dockerfile).')
param image string

@description('Private registry of the image (e.g. myregistry.azurecr.io), pulled with the identity (AcrPull); empty for a public image.')
param registryServer string = ''

@description('Display name of the Azure Bot in Teams.')
param botDisplayName string = 'Warden'

@description('Azure Bot pricing tier; Teams is a standard channel (free on F0).')
@allowed([
  'F0'
  'S1'
])
param botSku string = 'F0'

@description('Entra tenants whose Teams activities Warden serves (comma-separated).')
param allowedTenantIds string = tenant().tenantId

@description('Sentinel workspaces to poll, comma-separated subscription/resourceGroup/workspace; empty: webhooks only.')
param sentinelWorkspaces string = ''

@description('Entra group ids whose members may triage from cards (comma-separated); empty: any channel member.')
param responderGroupIds string = ''

@description('SharePoint site of the evidence records, host:/sites/Name; empty: no SharePoint.')
param sharepointSite string = ''

@description('Standard Webhooks secrets (whsec_..., comma-separated) that Sentinel senders sign with.')
@secure()
param sentinelWebhookSecrets string

@description('Fernet keys of the data at rest (comma-separated; `python app.py keys generate`).')
@secure()
param encryptionKeys string

@description('PostgreSQL administrator login.')
param postgresAdminLogin string = 'wardenadmin'

@description('PostgreSQL administrator password.')
@secure()
param postgresAdminPassword string

@description('PostgreSQL major version.')
@allowed([
  '15'
  '16'
])
param postgresVersion string = '16'

@description('PostgreSQL compute size (Burstable B1ms suits a small tenant).')
param postgresSkuName string = 'Standard_B1ms'

@description('PostgreSQL compute tier of that size.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@description('Fewest replicas; two or more keep Warden up during a rolling upgrade.')
@minValue(1)
param minReplicas int = 2

@description('Most replicas.')
@minValue(1)
param maxReplicas int = 4

var suffix = uniqueString(resourceGroup().id)
var appName = '${namePrefix}-app'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var fqdn = '${appName}.${appEnvironment.properties.defaultDomain}'
var registries = empty(registryServer) ? [] : [
  {
    server: registryServer
    identity: identity.id
  }
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-id'
  location: location
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${namePrefix}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('${namePrefix}kv${suffix}', 24)
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

// Read by Warden itself through WARDEN_KEY_VAULT_URL (names are the variables, dashed).
resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'WARDEN-SENTINEL-WEBHOOK-SECRETS'
  properties: {
    value: sentinelWebhookSecrets
  }
}

resource encryptionKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'WARDEN-ENCRYPTION-KEYS'
  properties: {
    value: encryptionKeys
  }
}

// Read by Container Apps into WARDEN_DATABASE_URL; not WARDEN-prefixed, so Warden skips it.
resource databaseUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'database-url'
  properties: {
    value: 'postgresql+asyncpg://${postgresAdminLogin}:${uriComponent(postgresAdminPassword)}@${postgres.properties.fullyQualifiedDomainName}:5432/${database.name}?ssl=require'
  }
}

resource vaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: '${namePrefix}-pg-${suffix}'
  location: location
  sku: {
    name: postgresSkuName
    tier: postgresSkuTier
  }
  properties: {
    version: postgresVersion
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    authConfig: {
      activeDirectoryAuth: 'Disabled'
      passwordAuth: 'Enabled'
    }
    storage: {
      storageSizeGB: 32
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    // Public access limited to Azure services (the rule below). For private access instead,
    // give a delegated subnet and a private DNS zone here (network.delegatedSubnetResourceId,
    // network.privateDnsZoneArmResourceId, publicNetworkAccess: 'Disabled') and put the
    // Container Apps environment in the same virtual network.
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: postgres
  name: 'warden'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// 0.0.0.0-0.0.0.0 is Azure's "allow Azure services" rule; remove it with private access.
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: postgres
  name: 'AllowAzureServices'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

var secrets = [
  {
    name: 'database-url'
    keyVaultUrl: databaseUrlSecret.properties.secretUri
    identity: identity.id
  }
]

var requiredSettings = [
  {
    name: 'WARDEN_MODE'
    value: 'production'
  }
  {
    name: 'WARDEN_HOST'
    value: '0.0.0.0'
  }
  {
    name: 'WARDEN_PORT'
    value: '3978'
  }
  {
    name: 'WARDEN_AUTO_MIGRATE'
    value: 'false'
  }
  {
    name: 'WARDEN_DATABASE_URL'
    secretRef: 'database-url'
  }
  {
    name: 'WARDEN_KEY_VAULT_URL'
    value: vault.properties.vaultUri
  }
  {
    name: 'WARDEN_ALLOWED_TENANT_IDS'
    value: allowedTenantIds
  }
  {
    name: 'WARDEN_MANIFEST__PUBLIC_HOST'
    value: fqdn
  }
  {
    name: 'MICROSOFT_APP_TYPE'
    value: 'UserAssignedMSI'
  }
  {
    name: 'MICROSOFT_APP_ID'
    value: identity.properties.clientId
  }
  {
    name: 'MICROSOFT_APP_TENANT_ID'
    value: identity.properties.tenantId
  }
  // The same identity for ARM, Graph and Key Vault (DefaultAzureCredential picks it by id).
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  {
    name: 'AZURE_TENANT_ID'
    value: identity.properties.tenantId
  }
]

var optionalSettings = filter([
  {
    name: 'WARDEN_SENTINEL_WORKSPACES'
    value: sentinelWorkspaces
  }
  {
    name: 'WARDEN_RESPONDER_GROUP_IDS'
    value: responderGroupIds
  }
  {
    name: 'WARDEN_SHAREPOINT_SITE'
    value: sharepointSite
  }
], setting => !empty(setting.value))

var appSettings = concat(requiredSettings, optionalSettings)

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    managedEnvironmentId: appEnvironment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 3978
        transport: 'http'
        allowInsecure: false
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'warden'
          image: image
          env: appSettings
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/healthz'
                port: 3978
              }
              periodSeconds: 5
              failureThreshold: 24
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 3978
              }
              periodSeconds: 15
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 3978
              }
              periodSeconds: 10
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
      }
    }
  }
  dependsOn: [
    vaultReader
    webhookSecret
    encryptionKeysSecret
  ]
}

// `az containerapp job start -n <name> -g <rg>` applies the migrations (docs/deploy.md).
resource migrate 'Microsoft.App/jobs@2024-03-01' = {
  name: '${namePrefix}-migrate'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: appEnvironment.id
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 900
      replicaRetryLimit: 1
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: image
          command: [
            'python'
            'app.py'
            'db'
            'upgrade'
          ]
          env: appSettings
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
        }
      ]
    }
  }
  dependsOn: [
    vaultReader
    webhookSecret
    encryptionKeysSecret
  ]
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${namePrefix}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: botSku
  }
  properties: {
    displayName: botDisplayName
    endpoint: 'https://${app.properties.configuration.ingress.fqdn}/api/messages'
    msaAppId: identity.properties.clientId
    msaAppType: 'UserAssignedMSI'
    msaAppMSIResourceId: identity.id
    msaAppTenantId: identity.properties.tenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: false
      acceptedTerms: true
    }
  }
}

@description('The Azure Bot\'s messaging endpoint (Teams posts activities here).')
output messagingEndpoint string = 'https://${app.properties.configuration.ingress.fqdn}/api/messages'

@description('Where Sentinel automation sends signed incident webhooks.')
output sentinelWebhookUrl string = 'https://${app.properties.configuration.ingress.fqdn}/api/webhooks/sentinel'

@description('Where a ServiceNow business rule sends signed record changes.')
output servicenowWebhookUrl string = 'https://${app.properties.configuration.ingress.fqdn}/api/webhooks/servicenow'

@description('Client id of the identity: the bot\'s app id and the Teams manifest\'s botId.')
output identityClientId string = identity.properties.clientId

@description('Object id of the identity: grant it Graph app roles and Azure roles (docs/deploy.md).')
output identityPrincipalId string = identity.properties.principalId

@description('The vault whose WARDEN-* secrets Warden reads.')
output keyVaultName string = vault.name

@description('The Container App running Warden.')
output containerAppName string = app.name

@description('The job that applies migrations; start it before rolling a new image.')
output migrationJobName string = migrate.name

@description('The Azure Bot resource.')
output botName string = bot.name
