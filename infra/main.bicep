// Tandem in one subscription: `azd up` creates the resource group and everything Tandem runs on, and grants its
// managed identity exactly what it calls (see app/roles.bicep) on the AVD and VM resource groups of both regions.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to name the resource group and to derive unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region for Tandem\'s own resources (function app, storage, Key Vault, Event Grid topic).')
param location string

@description('Resource group for Tandem\'s resources; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Client ID of the existing Entra ID app registration that protects the HTTP routes and defines the app roles Tandem.Failover.Operator and Tandem.Failover.Approver (see the README).')
param authClientId string

@description('Tenant of that app registration; default the deployment\'s tenant.')
param authTenantId string = tenant().tenantId

@description('Resource groups that hold the host pools and application groups, in both regions: { subscriptionId, resourceGroup, applicationGroups: [names whose Desktop Virtualization User assignments move in a failover] }. `scripts/tandem params topology.yaml` prints this from the topology file.')
param avdResourceGroups array

@description('Resource groups that hold the session host VMs, in both regions: { subscriptionId, resourceGroup }.')
param vmResourceGroups array

@description('Resource IDs of the ANQ resources whose Resource Health proposes a failover (the topology\'s anq.resource_id).')
param anqResourceIds array = []

@description('Host pools, per resource group: { subscriptionId, resourceGroup, names }. Their Connection logs go to Tandem\'s workspace for the logon-rate alert.')
param hostPools array = []

@description('Create the action group (POST /api/alerts) and the alert rules: logon rate, Service Health, ANQ Resource Health.')
param wireAlerts bool = true

@description('NCRONTAB schedule of Tandem\'s own probe of each ANQ cluster (six fields, UTC).')
param anqWatchSchedule string = '30 * * * * *'

@description('Virtual networks that hold the ANQ clusters\' private addresses; Tandem\'s integration network is peered with each (both directions). Leave empty when existingSubnetId already reaches them.')
param anqVirtualNetworkIds array = []

@description('An existing subnet (delegated to Microsoft.App/environments, with the Microsoft.KeyVault service endpoint) to integrate with instead of creating a virtual network; it must reach both ANQ clusters.')
param existingSubnetId string = ''

@description('Address space of the virtual network Tandem creates (when existingSubnetId is empty).')
param vnetAddressPrefix string = '10.250.0.0/24'

@description('Subnet for the function app\'s virtual network integration (Flex Consumption needs at least a /27).')
param integrationSubnetPrefix string = '10.250.0.0/26'

@description('Subnet for the private endpoints of storage and the Event Grid topic (when existingSubnetId is empty).')
param privateEndpointSubnetPrefix string = '10.250.0.64/27'

@description('With existingSubnetId: an existing subnet (not delegated) in the same network for the private endpoints.')
param existingPrivateEndpointSubnetId string = ''

@description('Create the private endpoints of storage (blob, queue, table) and the Event Grid topic in Tandem\'s network, with their private DNS zones, as the Flex Consumption azd templates do. Public network access to both is off either way: false means you bring the endpoints and DNS (a hub\'s central private DNS zones).')
param vnetEnabled bool = true

@description('Public IP addresses or CIDR ranges allowed through the Key Vault firewall besides Tandem\'s subnet, e.g. the administrator\'s address while setting the Qumulo credentials.')
param keyVaultAllowedIps array = []

@description('Object ID of the deploying user (azd sets it); granted Key Vault Secrets Officer so it can store the Qumulo credentials. Empty: no grant.')
param principalId string = ''

@description('NCRONTAB schedule of the autoscale timer (six fields, UTC).')
param autoscaleSchedule string = '0 * * * * *'

@description('NCRONTAB schedule of the snapshot timer (six fields, UTC); snapshots are taken once per hourly slot however often it fires.')
param snapshotSchedule string = '0 */15 * * * *'

@description('Path of the topology file inside the deployed package (relative to the app root).')
param topologyPath string = 'topology.yaml'

@description('Durable Functions task hub name; also the prefix of Tandem\'s tables (letters and digits).')
param taskHub string = 'tandem'

@description('Most instances Flex Consumption may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance (MB).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Days Log Analytics keeps Tandem\'s logs.')
param logRetentionDays int = 90

@description('Create the Event Grid subscriptions to the app\'s functions. They need the deployed functions, so the postdeploy hook in azure.yaml turns this on and provisions again.')
param wireEvents bool = false

var tags = { 'azd-env-name': environmentName, application: 'tandem' }
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var appName = 'func-tandem-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-tandem-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-tandem-${resourceToken}'
    componentName: 'appi-tandem-${resourceToken}'
    location: location
    tags: tags
    retentionDays: logRetentionDays
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    displayName: 'Tandem (${environmentName})'
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
  }
}

module network 'app/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-tandem-${resourceToken}'
    location: location
    tags: tags
    existingSubnetId: existingSubnetId
    addressPrefix: vnetAddressPrefix
    subnetPrefix: integrationSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    existingPrivateEndpointSubnetId: existingPrivateEndpointSubnetId
  }
}

module peerings 'app/peering.bicep' = [for (remote, i) in anqVirtualNetworkIds: if (empty(existingSubnetId)) {
  name: 'peering-${i}'
  scope: resourceGroup(split(remote, '/')[2], split(remote, '/')[4])
  params: {
    localVnetId: network.outputs.vnetId
    remoteVnetId: remote
  }
}]

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'sttandem${resourceToken}'
    location: location
    tags: tags
    deploymentContainer: 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'
  }
}

module vault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-tandem-${take(resourceToken, 13)}'
    location: location
    tags: tags
    subnetId: network.outputs.subnetId
    allowedIps: keyVaultAllowedIps
  }
}

module topic 'app/topic.bicep' = {
  name: 'topic'
  scope: rg
  params: {
    name: 'evgt-tandem-${resourceToken}'
    location: location
    tags: tags
  }
}

module privateEndpoints 'app/private-endpoints.bicep' = if (vnetEnabled) {
  name: 'private-endpoints'
  scope: rg
  params: {
    location: location
    tags: tags
    subnetId: network.outputs.privateEndpointSubnetId
    vnetId: network.outputs.linkedVnetId
    storageAccountName: storage.outputs.name
    topicName: topic.outputs.name
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: appName
    planName: 'plan-tandem-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainer: storage.outputs.deploymentContainer
    appInsightsConnectionString: monitoring.outputs.connectionString
    subnetId: network.outputs.subnetId
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    authClientId: authClientId
    authTenantId: authTenantId
    appSettings: {
      AZURE_CLIENT_ID: identity.outputs.clientId
      TANDEM_TASK_HUB: taskHub
      TANDEM_TOPOLOGY_PATH: topologyPath
      TANDEM_EVENTS_ENDPOINT: topic.outputs.endpoint
      AUTOSCALE_SCHEDULE: autoscaleSchedule
      SNAPSHOT_SCHEDULE: snapshotSchedule
      ANQ_WATCH_SCHEDULE: anqWatchSchedule
    }
  }
}

module dataAccess 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.componentName
    keyVaultName: vault.outputs.name
    topicName: topic.outputs.name
    deployerPrincipalId: principalId
  }
}

module roles 'app/roles.bicep' = {
  name: 'roles'
  params: {
    environmentName: environmentName
    subscriptionIds: [for group in concat(avdResourceGroups, vmResourceGroups): group.subscriptionId]
  }
}

// Each custom role only where its resources are: session host operations on the AVD resource groups, power on the
// VM resource groups, and the delegation on the listed application groups, with a condition that allows only
// Desktop Virtualization User assignments to users and groups.
module avdAccess 'app/role-assignment.bicep' = [for (group, i) in avdResourceGroups: {
  name: 'access-avd-${i}'
  scope: resourceGroup(group.subscriptionId, group.resourceGroup)
  params: {
    roleDefinitionId: roles.outputs.sessionHostOperatorRoleId
    principalId: identity.outputs.principalId
  }
}]

module vmAccess 'app/role-assignment.bicep' = [for (group, i) in vmResourceGroups: {
  name: 'access-vms-${i}'
  scope: resourceGroup(group.subscriptionId, group.resourceGroup)
  params: {
    roleDefinitionId: roles.outputs.vmPowerOperatorRoleId
    principalId: identity.outputs.principalId
  }
}]

module appGroupAccess 'app/appgroup-access.bicep' = [for (group, i) in avdResourceGroups: {
  name: 'access-appgroups-${i}'
  scope: resourceGroup(group.subscriptionId, group.resourceGroup)
  params: {
    applicationGroups: group.applicationGroups
    roleDefinitionId: roles.outputs.accessDelegateRoleId
    principalId: identity.outputs.principalId
  }
}]

module events 'app/events.bicep' = if (wireEvents) {
  name: 'events'
  scope: rg
  params: {
    name: 'evgst-health-${resourceToken}'
    tags: tags
    functionAppId: api.outputs.id
    topicName: topic.outputs.name
    vmPrefixes: [for group in vmResourceGroups: '/subscriptions/${group.subscriptionId}/resourceGroups/${group.resourceGroup}/providers/Microsoft.Compute/virtualMachines/']
  }
}

module alerts 'app/alerts.bicep' = if (wireAlerts) {
  name: 'alerts'
  scope: rg
  params: {
    tags: tags
    functionAppId: api.outputs.id
    workspaceId: monitoring.outputs.workspaceId
    subscriptionIds: [for group in concat(avdResourceGroups, vmResourceGroups): group.subscriptionId]
    anqResourceIds: anqResourceIds
  }
}

module diagnostics 'app/hostpool-diagnostics.bicep' = [for (group, i) in hostPools: if (wireAlerts) {
  name: 'diagnostics-${i}'
  scope: resourceGroup(group.subscriptionId, group.resourceGroup)
  params: {
    hostPoolNames: group.names
    workspaceId: monitoring.outputs.workspaceId
  }
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output TANDEM_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output TANDEM_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output TANDEM_KEY_VAULT_NAME string = vault.outputs.name
output TANDEM_KEY_VAULT_URI string = vault.outputs.uri
output TANDEM_EVENTS_ENDPOINT string = topic.outputs.endpoint
output TANDEM_SESSION_HOST_OPERATOR_ROLE_ID string = roles.outputs.sessionHostOperatorRoleId
output TANDEM_VM_POWER_OPERATOR_ROLE_ID string = roles.outputs.vmPowerOperatorRoleId
output TANDEM_ACCESS_DELEGATE_ROLE_ID string = roles.outputs.accessDelegateRoleId
