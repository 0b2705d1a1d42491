// The Tandem workbook in Azure Monitor: autoscale decisions and actions per pool, hosts against sessions, snapshot
// freshness per profile directory, and every failover step. Each panel is a KQL query over Tandem's structured log
// events in the workspace (AppTraces.Message holds one JSON line per event); tests/functional/test_workbook.py holds
// every event name and field the queries read to the ones Tandem emits.
@description('Name shown in the Workbooks gallery.')
param displayName string

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('The Log Analytics workspace the app logs to: the workbook is saved on it and queries it.')
param workspaceId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(workspaceId, 'tandem-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: workspaceId
    serializedData: replace(loadTextContent('workbook.json'), '__WORKSPACE_ID__', workspaceId)
  }
}

output workbookId string = workbook.id
