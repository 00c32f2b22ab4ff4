"""Tenancy: the auth context from the JWT, roles, permission dependencies, the audit trail."""
