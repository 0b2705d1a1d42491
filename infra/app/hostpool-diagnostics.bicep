// A host pool's Connection logs (WVDConnections) to Tandem's workspace, where the logon-rate alert reads them.
@description('Names of the host pools in this resource group.')
param hostPoolNames array

@description('Log Analytics workspace to send the logs to.')
param workspaceId string

resource pools 'Microsoft.DesktopVirtualization/hostPools@2024-04-03' existing = [for name in hostPoolNames: {
  name: name
}]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = [for (name, i) in hostPoolNames: {
  name: 'tandem-connections'
  scope: pools[i]
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'Connection'
        enabled: true
      }
    ]
  }
}]
