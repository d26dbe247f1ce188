"""Test plugins: stand-ins for the provider plugins that cannot be had on the test machines."""
