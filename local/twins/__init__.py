"""Local stand-ins for Azure Resource Manager and Azure Native Qumulo, served over loopback HTTPS."""
