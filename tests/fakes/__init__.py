"""Loopback fakes of outside services (a real server on 127.0.0.1 speaking the vendor's wire format)."""
