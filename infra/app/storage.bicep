// The function app's storage: the deployment package (blob), the Durable task hub (queues, tables, blobs) and
// Tandem's own tables and lock blobs. Shared keys are off: only Entra ID identities get in.
@description('Name of the storage account.')
param name string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Blob container that holds the deployed package (Flex Consumption).')
param deploymentContainer string

@description('Replication: geo-zone-redundant by default; Standard_GRS where the region has no availability zones.')
@allowed(['Standard_GZRS', 'Standard_RAGZRS', 'Standard_GRS', 'Standard_RAGRS'])
param skuName string = 'Standard_GZRS'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Disabled' // reached through private endpoints only (private-endpoints.bicep, or your own)
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Deny'
    }
    encryption: {
      requireInfrastructureEncryption: true
      keySource: 'Microsoft.Storage'
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {}
}

resource package 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainer
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output id string = account.id
output deploymentContainer string = package.name
