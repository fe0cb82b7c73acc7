"""Diffusion Lab: the one entrypoint (placeholder until the dashboard issue lands)."""

import streamlit as st

st.set_page_config(page_title="Diffusion Lab", layout="wide")
st.title("Diffusion Lab")
st.write("Diffusion models and flow matching, after UC Berkeley CS180 Project 5.")
