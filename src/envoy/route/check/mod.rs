//! router_check_tool
