"""Test doubles standing in for upstream providers: loopback servers, never internal mocks."""
