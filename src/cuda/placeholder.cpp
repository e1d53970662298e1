namespace tf::cuda { void placeholder() {} }
