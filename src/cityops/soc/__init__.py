"""Information security (SOC): syslog, CEF and Wazuh listeners, the province's information systems, their
vulnerabilities and websites, and security rules that open incidents."""
