// What Azure Monitor sends Tandem, and how: one action group whose Azure Function receiver is POST /api/alerts
// (common alert schema on; called with the function's key), and the alert rules that use it: the logon rate per
// host pool (WVDConnections, split by the pool's _ResourceId), Service Health incidents and Resource Health of the
// ANQ resources in the estate's subscriptions.
@description('Tags.')
param tags object

@description('Resource ID of the function app.')
param functionAppId string

@description('Log Analytics workspace the host pools send their Connection logs to.')
param workspaceId string

@description('Subscriptions of the estate, repeats allowed (the Service Health and Resource Health alerts watch each).')
param subscriptionIds array

@description('Resource IDs of the ANQ resources (a Resource Health activity-log alert where Azure offers one).')
param anqResourceIds array

@description('Logons per 5 minutes in one host pool above which autoscale is told at once.')
param logonRateThreshold int = 20

var subscriptions = union(subscriptionIds, subscriptionIds) // each once

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: last(split(functionAppId, '/'))
}

resource group 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-tandem-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'tandem'
    enabled: true
    azureFunctionReceivers: [
      {
        name: 'tandem-alerts'
        functionAppResourceId: functionAppId
        functionName: 'alerts_webhook'
        httpTriggerUrl: 'https://${site.properties.defaultHostName}/api/alerts?code=${listKeys('${functionAppId}/functions/alerts_webhook', '2024-04-01').default}'
        useCommonAlertSchema: true
      }
    ]
  }
}

// The logon rate per host pool, as the AVD documentation queries WVDConnections: Started connections per pool.
resource logonRate 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'sqr-tandem-logon-rate'
  location: resourceGroup().location
  tags: tags
  properties: {
    displayName: 'Tandem: AVD logon rate per host pool'
    description: 'Logons per 5 minutes by host pool (WVDConnections, State == Started); Tandem sizes the pool at once.'
    severity: 3
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    scopes: [
      workspaceId
    ]
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'WVDConnections | where State == "Started" | summarize logons = count() by _ResourceId'
          timeAggregation: 'Total'
          metricMeasureColumn: 'logons'
          dimensions: [
            {
              name: '_ResourceId'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: logonRateThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        group.id
      ]
    }
  }
}

// Service Health incidents in the estate's subscriptions; Tandem keeps only watched services in paired regions.
resource serviceHealth 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: 'ala-tandem-service-health'
  location: 'global'
  tags: tags
  properties: {
    enabled: true
    description: 'Service Health incidents: Tandem proposes a failover for a watched service in a paired region.'
    scopes: [for sub in subscriptions: '/subscriptions/${sub}']
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'ServiceHealth'
        }
        {
          field: 'properties.incidentType'
          equals: 'Incident'
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: group.id
        }
      ]
    }
  }
}

// Resource Health of the ANQ resources, where Azure reports it for them.
resource anqHealth 'Microsoft.Insights/activityLogAlerts@2020-10-01' = if (!empty(anqResourceIds)) {
  name: 'ala-tandem-anq-health'
  location: 'global'
  tags: tags
  properties: {
    enabled: true
    description: 'Resource Health of the ANQ resources: Unavailable, not by the customer, proposes a failover.'
    scopes: [for sub in subscriptions: '/subscriptions/${sub}']
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'ResourceHealth'
        }
        {
          anyOf: [for id in anqResourceIds: {
            field: 'resourceId'
            equals: id
          }]
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: group.id
        }
      ]
    }
  }
}

output actionGroupId string = group.id
