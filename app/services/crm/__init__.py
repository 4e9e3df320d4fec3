"""The CRM: contacts, their timeline, custom fields and the CRM dashboard's figures."""
