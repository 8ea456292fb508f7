package proxy

import "net/url"

type neturl = url.URL

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }
