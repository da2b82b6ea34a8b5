"""The Streamlit lab: thin views over the library (no model math here)."""
