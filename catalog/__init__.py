"""The catalog: regions, parties, ecological products and their monitoring records."""
