"""Class definitions, one module per schema prefix (AMT_, CIM_, IPS_)."""
